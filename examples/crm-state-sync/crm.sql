-- The CRM's database, as far as switchboard reads it (examples/crm-state-sync).
CREATE TABLE account_managers (id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT, email TEXT);
CREATE TABLE applicants (id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT);
CREATE TABLE agents (id TEXT PRIMARY KEY, team TEXT NOT NULL, languages TEXT);

INSERT INTO account_managers VALUES
  ('AM-1', 'Grace Hopper', '+15550100001', 'grace@example.com'),
  ('AM-2', 'Alan Turing', '+15550100002', 'alan@example.com');
INSERT INTO applicants VALUES
  ('P-1', 'Ada Lovelace', '+15550199001'),
  ('P-2', 'Edsger Dijkstra', '+15550199002');
INSERT INTO agents VALUES
  ('agent-7', 'mortgages', 'en,fr'),
  ('agent-8', 'loans', 'en');
