-- squawk #137: varchar without a length is text.
CREATE TABLE payouts (id bigint PRIMARY KEY, reference varchar, note text);
