DELETE FROM page_views WHERE viewed_at < now();
UPDATE line_items SET price = 0 WHERE id > 0;
UPDATE orders SET note = 'archived' WHERE created_at < '2100-01-01';
UPDATE orders o SET note = c.country FROM customers c WHERE c.id = o.customer_id;
DELETE FROM events WHERE "accountId" IS NOT NULL AND created_at <= CURRENT_TIMESTAMP;
