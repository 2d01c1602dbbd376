import { spawnSync } from "node:child_process";

/**
 * Fails (never skips) when a system tool a test needs is missing, naming the command that installs
 * it. `deployment/install-deps.sh --dev` installs every one of them.
 */
export function requireTool(command: string, debianPackage: string, versionArgs: string[] = ["--version"]): void {
  const res = spawnSync(command, versionArgs, { stdio: "ignore" });
  if (res.error) throw new Error(`${command} is needed by this test: run deployment/install-deps.sh --dev (Debian package ${debianPackage}; apt-get install ${debianPackage}).`);
}
