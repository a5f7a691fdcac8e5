-- Crypto helpers and the error catalog.
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/include/base.psql
\set VERBOSITY terse
-- A real event (go-nostr test data): the canonical id is recomputed from the fields.
\set ev '{"content":"Wow 🤩 I like the way that this dude thinks. Is this the moment that Bitcoin becomes harder currency than gold, I hope so.","created_at":1741372929,"id":"bc990203855b44130b25686fe70aeae45f4c98fb916f224800b3acba667a8b85","kind":1,"pubkey":"3bbcab7e3d2b07a55027206d5e193813f01406882daad05412389a50b67ba92e","sig":"4224f1769d86c25e3dca51a1ac0dc1b1612038ae0b1dee0df711c1251d8571668648bacca322d914e2d0ae379f7f428e4cb519baef13d95fbcb5d4675e0556a7","tags":[["e","c56312f922d8984b15b2f005019965df2135a5e299a5a7499f68e7249ca95734","wss://@nos.lol","root"],["p","7c765d407d3a9d5ea117cb8b8699628560787fc084a0c76afaa449bfbd121d84"]]}'
SELECT buzz.event_id(:'ev'), buzz.verify_event(:'ev');
-- schnorr_verify on BIP-340 vectors 0 (valid), 5 (public key not on the curve), 6 (bad signature).
SELECT buzz.schnorr_verify('F9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9',
    '0000000000000000000000000000000000000000000000000000000000000000',
    'E907831F80848D1069A5371B402410364BDF1C5F8307B0084C55F1CE2DCA821525F66A4A85EA8B71E482A74F382D2CE5EBEEE8FDB2172F477DF4900D310536C0') AS vector0;
SELECT buzz.schnorr_verify('EEFDEA4CDB677750A420FEE807EACF21EB9898AE79B9768766E4FAA04A2D4A34',
    '243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89',
    '6CFF5C3BA86C69EA4B7376F31A9BCB4F74C1976089B2D9963DA2E5543E17776969E89B4C5564D00349106B8497785DD7D1D713A8AE82B32FA79D5F7FC407D39B') AS vector5;
SELECT buzz.schnorr_verify('DFF1D77F2A671C5F36183726DB2341BE58FEAE1DA2DECED843240F7B502BA659',
    '243F6A8885A308D313198A2E03707344A4093822299F31D0082EFA98EC4E6C89',
    'FFF97BD5755EEEA420453A14355235D382F6472F8568A18B2F057A14602975563CC27944640AC607CD107AE10923D9EF7A73C643E166BE5EBEAFA34B1AC553E2') AS vector6;
-- Malformed input is invalid:, never a crash.
SELECT buzz.schnorr_verify('zz', '00', '00');
SELECT buzz.event_id('{"kind":1}');
SELECT buzz.event_id('not json');
-- An event is a JSON object, not the same seven values in an array.
SELECT buzz.event_id(json_build_array(repeat('0', 64), repeat('0', 64), 1, 1, '[]'::json, 'x', repeat('0', 128))::text);
-- Parsing is bounded by buzz_tenancy.max_event_size everywhere, not only in publish.
SET buzz_tenancy.max_event_size = 1024;
SELECT buzz.verify_event('{"content":"' || repeat('x', 2000) || '"}');
RESET buzz_tenancy.max_event_size;
SELECT buzz.verify_event('{"id":"00","pubkey":"00","created_at":1,"kind":1,"tags":[],"content":"","sig":"00"}');
SELECT buzz.event_id('{"id":"' || repeat('0', 64) || '","pubkey":"' || repeat('0', 64) || '","created_at":1,"kind":1,"tags":[],"content":"a\u0000b","sig":"' || repeat('0', 128) || '"}');
-- A freshly signed event verifies; a one-character change of content does not.
\getenv sign BUZZ_SIGN
\set signed `:sign event --sk 0000000000000000000000000000000000000000000000000000000000000005 --kind 1 --content 'line\nbreak "quoted" / ü' --created-at 1700000000`
SELECT buzz.verify_event(:'signed') AS fresh_event_verifies,
       buzz.event_id(:'signed') = (:'signed'::jsonb ->> 'id') AS id_matches;
SELECT buzz.verify_event(replace(:'signed', 'quoted', 'quotes')) AS tampered_event_verifies;
-- The error alphabet: every client-visible message, each with a NIP-01 prefix.
SELECT code, sqlstate, message FROM buzz.error_catalog() ORDER BY code;
SELECT count(*) AS messages_without_prefix FROM buzz.error_catalog()
 WHERE message !~ '^(auth-required|restricted|invalid|duplicate|pow|rate-limited|blocked|error|frame-too-large): [a-z]';
SELECT count(*) = count(DISTINCT message) AS messages_unique FROM buzz.error_catalog();
