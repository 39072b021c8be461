-- Webhook starts (process format section 11): the start document travels with the queued run
-- (the request body and the named headers, as a JSON array of [name, value] pairs) and is
-- dropped when the run ends; `response` keeps the answer of a `respond: sync` process.
ALTER TABLE runs ADD COLUMN start_data BLOB;
ALTER TABLE runs ADD COLUMN start_properties TEXT;
ALTER TABLE runs ADD COLUMN response BLOB;
