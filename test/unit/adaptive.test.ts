import t from 'tap';
import type os from 'node:os';
import { factorFor, factorForHost, systemLoad } from '../../src/quota/adaptive.js';

t.test('the factor: 1 up to the threshold, then linear to min_factor at full load', async (t) => {
  const o = { cpuThreshold: 0.8, minFactor: 0.5 };
  t.equal(factorFor(0, o), 1);
  t.equal(factorFor(0.8, o), 1);
  t.equal(factorFor(0.9, o), 0.75);
  t.equal(factorFor(1, o), 0.5);
  t.equal(factorFor(1.7, o), 0.5, 'a reading above 1 is full load');
  t.equal(factorFor(Number.NaN, o), 1, 'a bad reading does not scale');
  const load = systemLoad()();
  t.ok(load.cpu >= 0 && load.cpu <= 1, `the host's CPU reading is a fraction (${load.cpu.toFixed(2)})`);
  t.ok(load.memory > 0 && load.memory < 1, `the host's memory reading is a fraction (${load.memory.toFixed(2)})`);
});

t.test('host memory above its threshold scales quotas too; the smaller factor wins', async (t) => {
  const o = { cpuThreshold: 0.8, memoryThreshold: 0.9, minFactor: 0.5 };
  t.equal(factorForHost({ cpu: 0.1, memory: 0.5 }, o), 1);
  t.ok(Math.abs(factorForHost({ cpu: 0.1, memory: 0.95 }, o) - 0.75) < 1e-9, 'memory half way from 0.9 to 1: 0.75');
  t.equal(factorForHost({ cpu: 1, memory: 0.95 }, o), 0.5, 'CPU at full load wins');
});

t.test("the reading is the host's: a saturated event loop in this process does not lower it", async (t) => {
  // An idle host: the cores' counters only ever add idle time.
  let tick = 0;
  const idleCpus = (): os.CpuInfo[] => {
    tick += 1000;
    return [0, 1].map(() => ({ model: 'test', speed: 1, times: { user: 0, nice: 0, sys: 0, irq: 0, idle: tick } }));
  };
  const read = systemLoad({ cpus: idleCpus, memory: () => 0.2 });
  // One client's flood, as the sidecar sees it: the event loop busy for 200 ms without a break.
  const until = performance.now() + 200;
  while (performance.now() < until) {
    /* busy */
  }
  const load = read();
  t.equal(load.cpu, 0, 'an idle host reads 0 whatever this process did');
  t.equal(factorForHost(load, { cpuThreshold: 0.8, memoryThreshold: 0.9, minFactor: 0.5 }), 1, 'and nothing is scaled');
});
