-- How a kept chunk's body is stored: NULL as encoded, 'lz4' compressed (LZ4 block, size first).
ALTER TABLE run_documents ADD COLUMN encoding TEXT;
