-- A run someone asked to cancel (the console's cancel of a run on another node): the reason;
-- the node running it stops it when it next renews its lease.
ALTER TABLE runs ADD COLUMN cancel_requested TEXT;

-- How a kept chunk's body is stored: NULL as encoded, 'lz4' compressed (LZ4 block, size first).
ALTER TABLE run_documents ADD COLUMN encoding TEXT;
