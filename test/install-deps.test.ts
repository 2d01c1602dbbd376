import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ROOT } from "../scripts/lib/launch.js";
import { requireTool } from "../hub/test/system-tools.js";

// deployment/install-deps.sh with stand-ins for dpkg-query, apt-get and sudo (this test must not
// install anything or need a password), run as root and, through setpriv, as an unprivileged user.
const SCRIPT = join(ROOT, "deployment", "install-deps.sh");
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sandbox(opts: { present: "all" | string[]; sudo: boolean }): { bin: string; calls: string } {
  const dir = mkdtempSync(join(tmpdir(), "labrig-install-deps-"));
  dirs.push(dir);
  chmodSync(dir, 0o777);
  const bin = join(dir, "bin");
  const calls = join(dir, "calls.log");
  writeFileSync(calls, "");
  chmodSync(calls, 0o666);
  spawnSync("mkdir", [bin]);
  const present = opts.present === "all" ? "*" : ` ${opts.present.join(" ")} `;
  const tool = (name: string, body: string): void => {
    writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
  };
  // dpkg-query -W -f=... PACKAGE: "install ok installed" for the packages said present.
  tool("dpkg-query", `p="\${@: -1}"; case "${present}" in "*"|*" $p "*) printf 'install ok installed';; *) exit 1;; esac`);
  tool("apt-get", `echo "apt-get $*" >> ${calls}`);
  if (opts.sudo) tool("sudo", `echo "sudo $*" >> ${calls}`);
  // Only these real tools: the script must not find a sudo (or anything else) the test did not put there.
  for (const real of ["bash", "grep", "node"]) {
    const path = real === "node" ? process.execPath : whichReal(real);
    symlinkSync(path, join(bin, real));
  }
  return { bin, calls };
}

const whichReal = (name: string): string => spawnSync("bash", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout.trim();

function run(box: { bin: string }, asUser: "root" | "nobody", args: string[] = []): { code: number | null; out: string } {
  const env = { PATH: box.bin, HOME: "/tmp" };
  const res =
    asUser === "root"
      ? spawnSync("/bin/bash", [SCRIPT, ...args], { env, encoding: "utf8" })
      : spawnSync(whichReal("setpriv"), ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/bash", SCRIPT, ...args], { env, encoding: "utf8" });
  return { code: res.status, out: `${res.stdout}${res.stderr}` };
}

describe("deployment/install-deps.sh", () => {
  it("as root installs what is missing with apt-get, never through sudo", () => {
    if (process.getuid?.() !== 0) throw new Error("this test runs as root (as CI does)");
    const box = sandbox({ present: ["socat", "build-essential", "python3"], sudo: true });
    const r = run(box, "root");
    expect(r.code, r.out).toBe(0);
    const calls = readFileSync(box.calls, "utf8");
    expect(calls).toContain("apt-get update -qq");
    expect(calls).toContain("apt-get install -y -qq --no-install-recommends ffmpeg");
    expect(calls).not.toContain("sudo");
  });

  it("as another user with everything present asks for nothing", () => {
    requireTool("setpriv", "util-linux");
    const box = sandbox({ present: "all", sudo: true });
    const r = run(box, "nobody", ["--dev"]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("install-deps: all present");
    expect(readFileSync(box.calls, "utf8")).toBe("");
  });

  it("as another user with something missing re-runs itself through sudo, or without sudo says how to run it as root", () => {
    requireTool("setpriv", "util-linux");
    const withSudo = sandbox({ present: [], sudo: true });
    const r = run(withSudo, "nobody", ["--dev"]);
    expect(r.code, r.out).toBe(0);
    expect(readFileSync(withSudo.calls, "utf8")).toBe(`sudo -- ${SCRIPT} --dev\n`);

    const noSudo = sandbox({ present: [], sudo: false });
    expect(existsSync(join(noSudo.bin, "sudo"))).toBe(false);
    const refused = run(noSudo, "nobody");
    expect(refused.code).toBe(1);
    expect(refused.out).toContain("there is no sudo here");
    expect(refused.out).toContain(`run it as root: su -c '${SCRIPT} '`);
    expect(readFileSync(noSudo.calls, "utf8")).toBe("");
  });

  it("offers every Debian package a test or script of the project asks for by name", () => {
    const script = readFileSync(SCRIPT, "utf8");
    const offered = new Set([...script.matchAll(/packages\+?=\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(/\s+/)).filter((p) => p !== ""));
    const asked = new Set<string>();
    for (const dir of ["hub/test", "test"]) {
      for (const name of readdirSync(join(ROOT, dir)).filter((n) => n.endsWith(".ts"))) {
        const text = readFileSync(join(ROOT, dir, name), "utf8");
        for (const m of text.matchAll(/requireTool\("[^"]+", "([a-z0-9][a-z0-9.+-]*)"/g)) asked.add(m[1]!);
      }
    }
    expect(asked.size).toBeGreaterThan(5);
    expect([...asked].filter((p) => !offered.has(p))).toEqual([]);
  });
});
