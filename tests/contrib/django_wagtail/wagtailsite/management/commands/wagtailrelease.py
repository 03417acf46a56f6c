"""`manage.py wagtailrelease`: the database as a wagtail 4.1 LTS site left it, with rows.

Every app is migrated to the migration that was its leaf in the wagtail 4.1
release (django-taggit 3.1 for taggit; Django's own apps in full) in one plan,
as `migrate` runs it (pre_migrate, the executor, post_migrate), then the main
tables get thousands of rows through SQL written for that schema (pages in
the treebeard tree, revisions, log entries, workflow states, page permissions,
search queries and their daily hits, images, documents, redirects, tags,
users and their profiles).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# (app label, leaf migration) of wagtail 4.1's wheel; applied in this order
RELEASE_4_1 = [
    ("contenttypes", None),
    ("auth", None),
    ("sessions", None),
    ("admin", None),
    ("taggit", "0005_auto_20220424_2025"),
    ("wagtailcore", "0078_referenceindex"),
    ("wagtailadmin", "0003_admin_managed"),
    ("wagtaildocs", "0012_uploadeddocument"),
    ("wagtailembeds", "0009_embed_cache_until"),
    ("wagtailforms", "0005_alter_formsubmission_form_data"),
    ("wagtailimages", "0024_index_image_file_hash"),
    ("wagtailredirects", "0008_add_verbose_name_plural"),
    ("wagtailsearch", "0007_delete_editorspick"),
    ("wagtailsearchpromotions", "0002_capitalizeverbose"),
    ("wagtailusers", "0011_userprofile_dismissibles"),
]

PAGES = 3000  # children of the home page

# A 4-character treebeard path segment (alphabet 0-9A-Z) for the integer g.
_SEG = " || ".join(
    f"substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', (g / {36**p}) % 36 + 1, 1)"
    for p in (3, 2, 1, 0)
)

DATA = [
    "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, "
    "is_staff, is_active, date_joined) SELECT 'x', false, 'user' || g, '', '', "
    "'user' || g || '@example.com', g % 10 = 0, true, now() FROM generate_series(1, 1000) g",
    "INSERT INTO wagtailusers_userprofile (submitted_notifications, approved_notifications, "
    "rejected_notifications, user_id, preferred_language, current_time_zone, avatar, "
    "updated_comments_notifications, dismissibles) SELECT true, true, true, id, '', '', '', "
    "true, '{}' FROM auth_user",
    "INSERT INTO wagtailcore_page (path, depth, numchild, title, slug, live, "
    "has_unpublished_changes, url_path, seo_title, show_in_menus, search_description, expired, "
    "content_type_id, owner_id, locked, draft_title, translation_key, locale_id) "
    f"SELECT '00010001' || {_SEG}, 3, 0, 'Page ' || g, 'page-' || g, true, false, "
    "'/home/page-' || g || '/', '', false, '', false, home.content_type_id, "
    "(SELECT min(id) FROM auth_user), false, 'Page ' || g, gen_random_uuid(), home.locale_id "
    f"FROM generate_series(1, {PAGES}) g, wagtailcore_page home WHERE home.path = '00010001'",
    f"UPDATE wagtailcore_page SET numchild = {PAGES} WHERE path = '00010001'",
    "INSERT INTO wagtailcore_revision (submitted_for_moderation, created_at, content, "
    "object_id, user_id, content_type_id, base_content_type_id, object_str) "
    "SELECT g % 7 = 0, now(), jsonb_build_object('title', p.title, 'pk', p.id), p.id::text, "
    "p.owner_id, p.content_type_id, p.content_type_id, p.title "
    "FROM wagtailcore_page p, generate_series(1, 2) g WHERE p.depth = 3",
    "UPDATE wagtailcore_page p SET latest_revision_id = r.id, live_revision_id = r.id "
    "FROM (SELECT max(id) AS id, object_id FROM wagtailcore_revision GROUP BY object_id) r "
    "WHERE r.object_id = p.id::text",
    # 0088/0089 rewrite the JSON of log entries: timestamps as strings, null data as {}
    "INSERT INTO wagtailcore_pagelogentry (label, action, data, timestamp, content_changed, "
    "deleted, content_type_id, page_id, revision_id, user_id, uuid) "
    "SELECT p.title, CASE WHEN g = 1 THEN 'wagtail.create' ELSE 'wagtail.publish' END, "
    "CASE WHEN p.id % 3 = 0 THEN 'null'::jsonb ELSE jsonb_build_object('revision', "
    "jsonb_build_object('id', p.latest_revision_id, 'created', "
    "to_char(now(), 'DD Mon YYYY HH24:MI'), 'go_live_at', '', 'has_live_version', true)) END, "
    "now(), g = 1, false, p.content_type_id, p.id, p.latest_revision_id, p.owner_id, "
    "gen_random_uuid() FROM wagtailcore_page p, generate_series(1, 2) g WHERE p.depth = 3",
    # 0080-0082 make workflow states generic (content type filled by RunPython)
    "INSERT INTO wagtailcore_workflowstate (status, created_at, page_id, requested_by_id, "
    "workflow_id) SELECT 'approved', now(), p.id, p.owner_id, 1 FROM wagtailcore_page p "
    "WHERE p.depth = 3 AND p.id % 4 = 0",
    # 0085-0090 turn permission_type into a permission FK (filled by RunPython)
    "INSERT INTO wagtailcore_grouppagepermission (permission_type, group_id, page_id) "
    "SELECT t, grp.id, p.id FROM wagtailcore_page p, auth_group grp, "
    "unnest(ARRAY['add', 'edit', 'publish']) t WHERE p.depth = 3 AND p.id % 5 = 0",
    # search_promotions 0003-0006 copy the queries out of wagtailsearch (RunPython)
    "INSERT INTO wagtailsearch_query (query_string) "
    "SELECT 'query ' || g FROM generate_series(1, 3000) g",
    "INSERT INTO wagtailsearch_querydailyhits (date, hits, query_id) "
    "SELECT current_date - g, g, q.id FROM wagtailsearch_query q, generate_series(1, 2) g",
    "INSERT INTO wagtailimages_image (title, file, width, height, created_at, "
    "uploaded_by_user_id, file_size, collection_id, file_hash) "
    "SELECT 'img ' || g, 'original_images/img' || g || '.jpg', 800, 600, now(), NULL, 1000, "
    "(SELECT min(id) FROM wagtailcore_collection), md5(g::text) "
    "FROM generate_series(1, 2000) g",
    "INSERT INTO wagtaildocs_document (title, file, created_at, collection_id, file_size, "
    "file_hash) SELECT 'doc ' || g, 'documents/doc' || g || '.pdf', now(), "
    "(SELECT min(id) FROM wagtailcore_collection), 1000, md5(g::text) "
    "FROM generate_series(1, 2000) g",
    "INSERT INTO wagtailredirects_redirect (old_path, is_permanent, redirect_link, "
    "automatically_created, created_at, redirect_page_route_path) "
    "SELECT '/old/' || g, true, '/new/' || g, false, now(), '' FROM generate_series(1, 2000) g",
    "INSERT INTO taggit_tag (name, slug) SELECT 'tag ' || g, 'tag-' || g "
    "FROM generate_series(1, 300) g",
    "INSERT INTO taggit_taggeditem (object_id, content_type_id, tag_id) "
    "SELECT i.id, (SELECT id FROM django_content_type WHERE app_label = 'wagtailimages' "
    "AND model = 'image'), t.id FROM wagtailimages_image i "
    "JOIN taggit_tag t ON t.id % 300 = i.id % 300",
    "ANALYZE",
]


class Command(BaseCommand):  # type: ignore[misc]
    help = "Migrate to wagtail 4.1's migration leaves and load rows."

    def handle(self, *args: Any, **options: Any) -> None:
        executor = MigrationExecutor(connection)
        graph = executor.loader.graph
        targets = [
            (app, name) if name else leaf
            for app, name in RELEASE_4_1
            for leaf in ([None] if name else [n for n in graph.leaf_nodes() if n[0] == app])
        ]
        plan = executor.migration_plan(targets)
        state = executor._create_project_state(with_applied_migrations=True)
        emit_pre_migrate_signal(0, False, connection.alias, apps=state.apps, plan=plan)
        state = executor.migrate(targets, plan=plan, state=state.clone())
        state.clear_delayed_apps_cache()
        emit_post_migrate_signal(0, False, connection.alias, apps=state.apps, plan=plan)
        with connection.cursor() as cursor:
            for sql in DATA:
                cursor.execute(sql)
