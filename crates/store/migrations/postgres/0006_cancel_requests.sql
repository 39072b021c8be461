-- A run someone asked to cancel (the console's cancel of a run on another node): the reason;
-- the node running it stops it when it next renews its lease.
ALTER TABLE runs ADD COLUMN cancel_requested TEXT;
