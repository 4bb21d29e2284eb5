import { readFileSync } from 'node:fs';
import t from 'tap';
import { ROLE_ALTER, ROLE_DESCRIBE, ROLE_RECORD, roleFor } from '../../src/auth/roles.js';
import { REQUEST_TYPES, requestTypeIndex, UNKNOWN_TYPE } from '../../src/observability/request-stats.js';
import { MESSAGES, messageIndex } from '../../src/protocol/messages/index.js';

// The registry (src/protocol/messages/index.ts) is the one list of requests: the roles, the request stats and
// the protocol's documentation are checked against it here.

t.test('each request type is registered once', async (t) => {
  const types = MESSAGES.map((m) => m.type);
  t.same([...new Set(types)], types, 'no type twice');
  for (const [i, m] of MESSAGES.entries()) t.equal(messageIndex(m.type), i, m.type);
  t.equal(messageIndex('NoSuchRequest'), -1);
});

t.test('each request needs the role docs/security.md gives it', async (t) => {
  const expected: Record<string, number> = {
    Hello: 0,
    Ping: 0,
    RecordProduce: ROLE_RECORD,
    RecordConsume: ROLE_RECORD,
    RecordRequest: ROLE_RECORD,
    RecordUsage: ROLE_RECORD,
    AcquireLease: ROLE_RECORD,
    ReleaseLease: ROLE_RECORD,
    DescribeQuotas: ROLE_DESCRIBE,
    DescribeUsage: ROLE_DESCRIBE,
    DescribeViolations: ROLE_DESCRIBE,
    DescribeFleet: ROLE_DESCRIBE,
    AlterQuotas: ROLE_ALTER,
    ResetUsage: ROLE_ALTER,
  };
  t.same(Object.keys(expected).sort(), MESSAGES.map((m) => m.type).sort(), 'every registered type has a row here');
  for (const [type, role] of Object.entries(expected)) t.equal(roleFor(type), role, type);
  t.equal(roleFor('NoSuchRequest'), 0, 'an unknown type needs none (the dispatcher refuses it)');
});

t.test('the request stats count by the registry, in its order (the order of the metric series)', async (t) => {
  t.same(REQUEST_TYPES, [
    'Hello',
    'Ping',
    'RecordProduce',
    'RecordConsume',
    'RecordRequest',
    'DescribeQuotas',
    'DescribeUsage',
    'AlterQuotas',
    'ResetUsage',
    'AcquireLease',
    'ReleaseLease',
    'DescribeViolations',
    'DescribeFleet',
    'RecordUsage',
    'unknown',
  ]);
  t.equal(requestTypeIndex('NoSuchRequest'), UNKNOWN_TYPE);
});

t.test('docs/protocol.md lists every registered request', async (t) => {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  const block = doc.slice(doc.indexOf('### Requests and replies'), doc.indexOf('## Error codes'));
  for (const m of MESSAGES) t.match(block, new RegExp(`\\n    ${m.type} +\\{`), m.type);
});
