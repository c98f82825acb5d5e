import { describe, expect, it } from 'vitest';
import { contracts } from '../../schemas/index.ts';
import { unreachableWarnings } from '../../services/common/reachability.ts';
import { harnessEvent } from '../fixtures/seed-events.ts';
import { valid } from '../helpers.ts';

const sample = valid(contracts.workflowEvent, harnessEvent('workflow_started', { workflow: { id: 'wf-1', name: 'Deploy' } }));
const loopbackAllowed = ['127.0.0.0/8', '::1/128'];
const at = (url: string, delegateSelectors: string[] = []) => ({ url, delegateSelectors });

describe('a rule that no pool will deliver is flagged when it is saved', () => {
  it('a URL its pool may not dial (loopback under plain npm start), naming the setting', async () => {
    const pools = [{ pool: 'default', tags: [], allowNetworks: [] }];
    for (const url of ['http://127.0.0.1:8080/hook', 'http://[::1]:8080/hook', 'http://localhost:8080/hook']) {
      const [warning, ...more] = await unreachableWarnings(at(url), sample, pools);
      expect(more).toEqual([]);
      expect(warning).toMatch(/^pool "default" may not dial this URL \((127\.0\.0\.1|::1) is loopback, not a public address\): allow it in DISPATCHER_ALLOW_NETWORKS/);
    }
  });

  it('says nothing of a URL its pool may dial, nor of a pool that has not said what it may dial', async () => {
    expect(await unreachableWarnings(at('http://127.0.0.1:8080/hook'), sample, [{ pool: 'default', tags: [], allowNetworks: loopbackAllowed }])).toEqual([]);
    expect(await unreachableWarnings(at('http://localhost:8080/hook'), sample, [{ pool: 'default', tags: [], allowNetworks: ['localhost'] }])).toEqual([]);
    expect(await unreachableWarnings(at('http://127.0.0.1:8080/hook'), sample, [{ pool: 'default', tags: [], allowNetworks: null }])).toEqual([]);
    expect(await unreachableWarnings(at('http://127.0.0.1:8080/hook'), sample, [])).toEqual([]);
  });

  it('delegate selectors no announced pool has, naming DISPATCHER_TAGS; the pool that has them judges the URL', async () => {
    const pools = [{ pool: 'default', tags: [], allowNetworks: [] }, { pool: 'local', tags: ['loopback'], allowNetworks: loopbackAllowed }];
    expect(await unreachableWarnings(at('http://127.0.0.1:8080/hook', ['eu']), sample, pools))
      .toEqual(['no dispatcher pool has all of the tags [eu] (the rule\'s delegate selectors): no pool will deliver it until dispatchers with those tags run (DISPATCHER_TAGS), or change the rule\'s delegate selectors']);
    expect(await unreachableWarnings(at('http://127.0.0.1:8080/hook', ['loopback']), sample, pools)).toEqual([]);
    // Selectors resolved per event choose no one pool to judge.
    expect(await unreachableWarnings(at('http://127.0.0.1:8080/hook', ['${workflow.id}']), sample, pools)).toEqual([]);
  });

  it('never quotes the URL (it may carry a token): only the address and why', async () => {
    const [warning] = await unreachableWarnings(at('http://user:hunter2@127.0.0.1:8080/hook?token=s3cret'), sample, [{ pool: 'default', tags: [], allowNetworks: [] }]);
    expect(warning).toContain('127.0.0.1 is loopback');
    expect(warning).not.toMatch(/hunter2|s3cret|hook/);
  });
});
