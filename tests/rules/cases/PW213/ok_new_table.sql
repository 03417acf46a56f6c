CREATE TABLE staging (id int REFERENCES invoices (id));
ALTER TABLE staging DISABLE TRIGGER ALL;
