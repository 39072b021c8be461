-- A rerun's run: the run it repeats (the console's "Run again"), so that lists and pages link
-- the two.
ALTER TABLE runs ADD COLUMN rerun_of TEXT;
