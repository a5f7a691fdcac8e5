-- NIP-98 HTTP auth (P3, DESIGN §12.9, §12.17): enter_http checks kind, id, signature, window,
-- the u tag against the request URL and the entered host, the method and the body hash, then
-- claims the event in the shared seen-set: accepted once per community, whatever connection
-- presents it again (tools/buzz-itest races two connections). Every refusal below names its
-- catalog entry; the fences name their mutants.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
SELECT encode(sha256('{"file":"cat.png"}'::bytea), 'hex') AS body \gset
\set now `date +%s`
\set kind 27235
\set content ''
\set at :now
\set sk :alice_sk
\set tags '[["u","https://a.example/api/upload?draft=1"],["method","POST"],["payload","' :body '"]]'
\i :abs_srcdir/include/sign.psql
\set upload :ev
SET ROLE buzz_relay;

-- Accepted: scheme and host compare case-insensitively; the actor is the signer.
BEGIN;
SELECT buzz.enter_http('a.example', 'post', 'HTTPS://A.Example/api/upload?draft=1', :'upload', :'body');
SELECT buzz.current_actor() = :'alice' AS actor_is_alice, buzz.current_community() IS NOT NULL AS entered;
COMMIT;
-- Presented again, from this or any other connection: refused (mutant "no NIP-98 claim").
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/api/upload?draft=1', :'upload', :'body');
ROLLBACK;

-- Each check refuses (fresh events, so none is a replay):
\set tags '[["u","https://a.example/api/upload?draft=1"],["method","POST"]]'
\set at :now
\set content 'path'
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/api/upload?draft=2', :'ev');   -- another query
ROLLBACK;
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/API/upload?draft=1', :'ev');   -- path is exact
ROLLBACK;
BEGIN;
SELECT buzz.enter_http('a.example', 'GET', 'https://a.example/api/upload?draft=1', :'ev');    -- method
ROLLBACK;
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/api/upload?draft=1', :'ev', :'body');  -- body, no payload tag
ROLLBACK;
BEGIN;
SELECT buzz.enter_http('alpha.example:8443', 'POST', 'https://a.example/api/upload?draft=1', :'ev');  -- u names another host of alpha
ROLLBACK;
BEGIN;
SELECT buzz.enter_http('b.example', 'POST', 'https://a.example/api/upload?draft=1', :'ev');   -- ... or of another community
ROLLBACK;
-- The u host must be the entered host even when the URLs agree (mutant "u host unchecked").
\set tags '[["u","https://b.example/x"],["method","POST"]]'
\set content 'host'
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://b.example/x', :'ev');
ROLLBACK;
\set tags '[["u","https://a.example/x"],["method","POST"],["payload","00"]]'
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/x', :'ev', :'body');             -- payload mismatch
ROLLBACK;
\set tags '[["u","https://a.example/x"],["u","https://a.example/x"],["method","POST"]]'
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/x', :'ev');                       -- two u tags
ROLLBACK;
\set tags '[["u","https://a.example/x"]]'
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/x', :'ev');                       -- no method tag
ROLLBACK;
\set tags '[["u","https://a.example/x"],["method","POST"]]'
SELECT :now - 120 AS at \gset
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/x', :'ev');                       -- stale
ROLLBACK;
\set at :now
\set kind 1
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/x', :'ev');                       -- wrong kind
ROLLBACK;
\set kind 27235
\set sk :dave_sk
\i :abs_srcdir/include/sign.psql
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/x', :'ev');                       -- dave is not admitted in alpha
ROLLBACK;
\set sk :alice_sk
\set content 'tampered'
\i :abs_srcdir/include/sign.psql
SELECT replace(:'ev', '"content":"tampered"', '"content":"tampereD"') AS forged \gset
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/x', :'forged');                   -- id mismatch
ROLLBACK;
BEGIN;
SELECT buzz.enter_http('nowhere.example', 'POST', 'https://nowhere.example/x', :'ev');           -- unmapped host
ROLLBACK;
-- A read-only transaction cannot record the claim, so it gets no context (§12.9).
BEGIN READ ONLY;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/x', :'ev');
ROLLBACK;
SELECT buzz.current_community() IS NULL AS no_context;
-- A refused or rolled-back request records nothing; the good event still works.
BEGIN;
SELECT buzz.enter_http('a.example', 'POST', 'https://a.example/x', :'ev');
SELECT buzz.current_actor() = :'alice' AS accepted_after_refusals;
COMMIT;

-- The claim step (DESIGN §12.9): claim_http checks and consumes the event in a transaction of
-- its own and returns a single-use nonce; the request then enters with the nonce. A failed
-- request leaves the event consumed; the nonce works once (mutant "claim_http inside the
-- request's transaction").
\set tags '[["u","https://a.example/claimed"],["method","PUT"]]'
\set content 'claimed'
\i :abs_srcdir/include/sign.psql
\set claimed :ev
BEGIN;
SELECT buzz.claim_http('a.example', 'PUT', 'https://a.example/claimed', :'claimed');   -- not inside a transaction
ROLLBACK;
SELECT buzz.claim_http('a.example', 'PUT', 'https://a.example/claimed', :'claimed') AS nonce \gset
SELECT left(:'nonce', 10) AS nonce_prefix;
BEGIN;
SELECT buzz.enter_http('a.example', :'nonce');
SELECT buzz.current_actor() = :'alice' AS actor_is_alice;
ROLLBACK;                                                                                 -- the request failed
SELECT buzz.claim_http('a.example', 'PUT', 'https://a.example/claimed', :'claimed');   -- the event stays consumed
BEGIN;
SELECT buzz.enter_http('a.example', 'PUT', 'https://a.example/claimed', :'claimed');
ROLLBACK;
BEGIN;
SELECT buzz.enter_http('b.example', :'nonce');                                           -- another community's host
ROLLBACK;
BEGIN;
SELECT buzz.enter_http('a.example', :'nonce');                                           -- the nonce, once
COMMIT;
BEGIN;
SELECT buzz.enter_http('a.example', :'nonce');
ROLLBACK;
BEGIN;
SELECT buzz.enter_http('a.example', 'buzz_http_00');
ROLLBACK;
-- Claim and use in one statement share one transaction: the nonce is refused there.
\set content 'one statement'
\i :abs_srcdir/include/sign.psql
SELECT buzz.enter_http('a.example', buzz.claim_http('a.example', 'PUT', 'https://a.example/claimed', :'ev'));
RESET ROLE;

-- The seen-set: one row per accepted event, in its community; purge keeps unexpired rows.
SELECT c.slug, count(*) FROM buzz.http_seen s JOIN buzz.communities c ON c.id = s.community_id GROUP BY 1 ORDER BY 1;
SELECT buzz.purge_http_seen() AS purged_fresh;
UPDATE buzz.http_seen SET expires_at = now() - interval '1 second';
SELECT buzz.purge_http_seen() AS purged_expired;
SELECT count(*) AS left_over FROM buzz.http_seen;
