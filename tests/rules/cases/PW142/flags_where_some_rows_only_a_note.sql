-- a past cut-off, a filter besides the join, a small key range: how many is unknown (a note)
DELETE FROM orders WHERE created_at < now() - interval '10 years';
UPDATE orders o SET note = c.country FROM customers c WHERE c.id = o.customer_id AND c.country = 'NL';
UPDATE orders SET note = 'x' WHERE id > 1000;
DELETE FROM page_views WHERE viewed_at < '2023-01-02';
