-- The per-community audit chain (S4 / L3, DESIGN §12.14): every control-plane change is in
-- its community's chain; the chain verifies; rows are append-only;
-- tampering and a row spliced in from another community are found at their seq; verification
-- reads only the entered community. (tools/buzz-itest races appends; scripts/test verifies
-- every chain again after pg_dump -> pg_restore.)
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\i :abs_srcdir/include/adopted.psql
\set VERBOSITY terse
SELECT id AS alpha_id FROM buzz.communities WHERE slug = 'alpha' \gset
SELECT id AS beta_id FROM buzz.communities WHERE slug = 'beta' \gset
-- Control-plane changes of every kind: channels (include/channels.psql: alice creates two in
-- alpha, bob one in beta), channel members added and removed, a host added and removed, a
-- member revoked and admitted again; in the operator chain, a table adopted and released
-- (besides include/adopted.psql's adoption of the relay's tables).
\i :abs_srcdir/include/channels.psql
\o /dev/null
BEGIN;
SELECT buzz.enter('a.example', :'alice_token');
SELECT buzz.add_channel_member(:'council', :'carol');
SELECT buzz.add_channel_member(:'general', :'carol', 'member');
SELECT buzz.remove_channel_member(:'general', :'carol');
COMMIT;
RESET ROLE;
SELECT buzz.add_host('alpha', 'old.alpha.example');
SELECT buzz.remove_host('old.alpha.example');
SELECT buzz.revoke('alpha', :'carol');
SELECT buzz.admit('alpha', :'carol');
CREATE TABLE public.audit_scratch (community_id uuid NOT NULL, id int PRIMARY KEY);
SELECT buzz.enable_tenancy('public.audit_scratch');
SELECT buzz.disable_tenancy('public.audit_scratch');
\o

-- What alpha's chain recorded (actors: operators, or the pubkey that acted).
SELECT action, count(*),
       string_agg(DISTINCT CASE WHEN actor LIKE 'operator:%' THEN 'operator'
                                WHEN actor = :'alice' THEN 'alice' WHEN actor = :'carol' THEN 'carol'
                                ELSE 'other' END, ',') AS actors
  FROM buzz.audit_log WHERE community_id = :'alpha_id' GROUP BY action ORDER BY action;
SELECT min(seq) = 1 AND max(seq) = count(*) AS alpha_seqs_contiguous,
       bool_and(seq = 1 AND prev_hash = '\x0000000000000000000000000000000000000000000000000000000000000000'
                OR prev_hash = (SELECT p.hash FROM buzz.audit_log p WHERE p.community_id = l.community_id AND p.seq = l.seq - 1)) AS linked
  FROM buzz.audit_log l WHERE community_id = :'alpha_id';
SELECT (SELECT seq FROM buzz.audit_heads WHERE community_id = :'alpha_id') = max(seq) AS head_is_last
  FROM buzz.audit_log WHERE community_id = :'alpha_id';

-- The relay verifies its community's chain, whole or a range.
SET ROLE buzz_relay;
BEGIN;
SELECT buzz.enter('a.example');
SELECT checked > 0 AS checked_some, first_bad_seq FROM buzz.audit_verify();
SELECT * FROM buzz.audit_verify(2, 4);
-- NULLs mean the defaults (not an internal error).
SELECT checked > 0 AS checked_some, first_bad_seq FROM buzz.audit_verify(NULL, NULL);
COMMIT;
-- ... only with a context, and never another community's rows (it has no table privilege).
SELECT * FROM buzz.audit_verify();
SELECT count(*) FROM buzz.audit_log;
RESET ROLE;

-- Append-only: the extension's owner role (what its code runs as) cannot change a row.
SET ROLE buzz_owner;
BEGIN;
SELECT buzz.enter('a.example');
UPDATE buzz.audit_log SET action = 'forged' WHERE seq = 1;
ROLLBACK;
BEGIN;
SELECT buzz.enter('a.example');
DELETE FROM buzz.audit_log WHERE seq = 1;
ROLLBACK;
TRUNCATE buzz.audit_log;
RESET ROLE;

-- Tampering (a superuser edits a row's detail): found at that seq; beta's chain is
-- unaffected; putting the detail back restores the chain.
SELECT detail AS original_detail FROM buzz.audit_log WHERE community_id = :'alpha_id' AND seq = 3 \gset
UPDATE buzz.audit_log SET detail = '{"role": "owner"}' WHERE community_id = :'alpha_id' AND seq = 3;
BEGIN;
SELECT buzz.enter('a.example');
SELECT first_bad_seq AS alpha_first_bad FROM buzz.audit_verify();
COMMIT;
BEGIN;
SELECT buzz.enter('b.example');
SELECT first_bad_seq AS beta_first_bad FROM buzz.audit_verify();
COMMIT;
UPDATE buzz.audit_log SET detail = :'original_detail' WHERE community_id = :'alpha_id' AND seq = 3;
BEGIN;
SELECT buzz.enter('a.example');
SELECT first_bad_seq AS alpha_after_repair FROM buzz.audit_verify();
COMMIT;

-- A splice: beta's first row copied onto the end of alpha's chain, linked to alpha's head and
-- with alpha's head moved to it. Its hash covers beta's community (and seq, and link), so
-- verification stops there (mutant "audit hash ignores the community").
BEGIN;
INSERT INTO buzz.audit_log (community_id, seq, prev_hash, hash, action, actor, object, detail, created_at)
SELECT :'alpha_id', h.seq + 1, h.hash, b.hash, b.action, b.actor, b.object, b.detail, b.created_at
  FROM buzz.audit_heads h, buzz.audit_log b
 WHERE h.community_id = :'alpha_id' AND b.community_id = :'beta_id' AND b.seq = 1;
UPDATE buzz.audit_heads SET seq = seq + 1,
       hash = (SELECT b.hash FROM buzz.audit_log b WHERE b.community_id = :'beta_id' AND b.seq = 1)
 WHERE community_id = :'alpha_id';
SELECT buzz.enter('a.example');
SELECT first_bad_seq = (SELECT seq FROM buzz.audit_heads WHERE community_id = :'alpha_id') AS splice_found
  FROM buzz.audit_verify();
ROLLBACK;
-- The same row content hashes differently in another community.
SELECT buzz.audit_hash(:'alpha_id', 1, now(), 'a', 'b', 'c', '{}', '\x00')
    <> buzz.audit_hash(:'beta_id', 1, now(), 'a', 'b', 'c', '{}', '\x00') AS community_is_hashed;

-- The operator chain (adopting the relay's tables) verifies too.
SELECT action, count(*) FROM buzz.operator_audit_log GROUP BY action ORDER BY action;
SELECT * FROM buzz.audit_verify_operator();
