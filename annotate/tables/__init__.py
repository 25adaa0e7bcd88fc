"""The spine: the four tables and the stage-1 error table (schema), their storage (store),
views over them (gold boxes, split images) and their versions (content hashes)."""
