CREATE TABLE fresh (id int, v text);
UPDATE fresh SET v = 'x' WHERE v IS NULL;
