/**
 * Prints when each spec file and each test starts, with the time since the
 * run began: the default reporter only prints what finished, so a run that
 * hangs would not say where. scripts/test.sh's watchdog relies on it.
 */
import type { Reporter, TestCase, TestModule } from "vitest/node";

const t0 = Date.now();
const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s]`;

export default class ProgressReporter implements Reporter {
  onTestModuleStart(m: TestModule): void {
    process.stderr.write(`${stamp()} start ${m.moduleId.replace(`${process.cwd()}/`, "")}\n`);
  }

  onTestCaseReady(t: TestCase): void {
    process.stderr.write(`${stamp()}   test ${t.fullName.slice(0, 160)}\n`);
  }
}
