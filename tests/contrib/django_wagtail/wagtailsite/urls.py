"""No views: the project exists for its migrations."""

urlpatterns: list[object] = []
