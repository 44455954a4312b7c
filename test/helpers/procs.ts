/** Live processes whose command line contains `needle`, read from /proc (no dependency on procps' pgrep). */
import { readdirSync, readFileSync } from 'node:fs';

export function processesMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue; // exited while we looked
    }
    if (cmd.includes(needle)) pids.push(Number(name));
  }
  return pids;
}
