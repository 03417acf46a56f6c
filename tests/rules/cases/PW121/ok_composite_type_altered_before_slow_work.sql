-- ALTER TYPE ... ADD ATTRIBUTE locks the composite type: no query reads or writes it.
ALTER TYPE address ADD ATTRIBUTE zip text;
UPDATE users SET country = 'NL';
