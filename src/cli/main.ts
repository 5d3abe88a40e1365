// The vfplane command line. Only the group of the command being run registers its flags
// (the top-level help is made of stubs, commands.ts), and a command's work lives in a
// module loaded only when it runs, so `vfplane --help` and every command start fast.
import { Command, CommanderError, Option } from './commander.js';
import { createRequire } from 'node:module';
import { printJson, reportError } from './output.js';
import { UsageError } from './errors.js';
import { isRepeatable } from './flags.js';
import { isTopName, TOP, type Group } from './commands.js';
import { interrupted } from '../util/interrupt.js';
import { replyTimeoutMs } from '../dataplane/reply-timeout.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

type Register = (program: Command) => void;

/** The module that registers each group of top-level commands, loaded when needed. */
const GROUPS: Record<Group, () => Promise<Register>> = {
  pcap: async () => (await import('./pcap.js')).registerPcap,
  bench: async () => (await import('./bench.js')).registerBench,
  sriov: async () => (await import('./sriov.js')).registerSriov,
  profile: async () => (await import('./profile.js')).registerProfile,
  cni: async () => (await import('./cni.js')).registerCni,
  doctor: async () => (await import('./doctor.js')).registerDoctor,
  dataplane: async () => (await import('./dataplane.js')).registerDataplane,
  demo: async () => (await import('./demo.js')).registerDemo,
};

/**
 * The top-level command ARGS (argv after the script) run: `help X` runs X's help, and
 * none when --help comes before the name (`vfplane -h pf` is the top-level help).
 */
function commandNamed(args: readonly string[]): string | undefined {
  const first = args.findIndex((a) => !a.startsWith('-'));
  if (first < 0 || args.slice(0, first).some((a) => a === '-h' || a === '--help')) return undefined;
  const words = args.slice(first).filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

/**
 * The command tree for ARGS. Only the group of the command ARGS name is registered
 * (`vfplane pf list` loads sriov.ts alone); without a command, or with a name that is
 * none (`vfplane --help`, `vfplane`, `vfplane nope`), every top-level command is a stub
 * made from the table in commands.ts: the same help, the same usage errors, no command
 * module loaded. `all` registers every group (the test that holds the stubs to it).
 */
export async function buildProgram(args: readonly string[], { all = false } = {}): Promise<Command> {
  const program = new Command('vfplane')
    .description('SR-IOV VF orchestration and a native VXLAN data plane for Kubernetes nodes')
    .version(pkg.version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    // commander's own usage errors in the words of every other error: "vfplane: …"
    // (subcommands inherit this; the groups register after it).
    .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'vfplane: ')) })
    // Options belong to the command they follow: `bench alloc --json` is alloc's --json.
    .enablePositionalOptions()
    .exitOverride()
    // A setting from the environment that a command may need half-way (a data plane's
    // reply wait, for gc and set-numvfs among others) is refused before any command runs.
    .hook('preAction', () => void replyTimeoutMs());
  const named = commandNamed(args);
  // Every group registers in GROUPS' order, which is the table's: the help lists them so.
  const groups: Group[] = all ? (Object.keys(GROUPS) as Group[]) : named !== undefined && isTopName(named) ? [TOP[named].group] : [];
  if (groups.length) {
    for (const g of groups) (await GROUPS[g]())(program);
  } else {
    for (const [name, c] of Object.entries(TOP)) {
      const stub = program.command(name).description(c.description);
      // Only for the help's "[options]" after the name; a stub never parses.
      if (c.options) stub.addOption(new Option('--options').hideHelp());
    }
  }
  // Subcommands inherit the same exit behaviour: usage errors exit 2.
  for (const c of program.commands) {
    c.exitOverride();
    for (const s of c.commands) {
      s.exitOverride();
      for (const t of s.commands) t.exitOverride();
    }
  }
  refuseRepeats(program);
  return program;
}

/** A flag with one value given twice (`--owner a/b --owner c/d`, `--mac A --mac B`) is a
 *  usage error, not the last one silently winning; list flags that add up are left
 *  (allowRepeats). commander calls a flag's parser before it records the value as given
 *  on the command line, so a parser that finds it so recorded sees a second use. */
function refuseRepeats(cmd: Command): void {
  for (const opt of cmd.options) {
    if (!(opt.required || opt.optional) || opt.variadic || isRepeatable(opt.parseArg)) continue;
    const parse = opt.parseArg;
    const key = opt.attributeName();
    let first = '';
    opt.argParser((value: string, previous: unknown) => {
      if (cmd.getOptionValueSource(key) === 'cli') {
        throw new UsageError(`${opt.long ?? opt.short} is given twice (${JSON.stringify(first)} and ${JSON.stringify(value)}); give it once`);
      }
      first = value;
      return parse ? parse(value, previous) : value;
    });
  }
  for (const c of cmd.commands) refuseRepeats(c);
}

/** The deepest command ARGS name (options skipped), from PROGRAM down. */
function reached(program: Command, args: string[]): Command {
  let c = program;
  for (const a of args) {
    if (a.startsWith('-')) continue;
    const sub = c.commands.find((x) => x.name() === a || x.aliases().includes(a));
    if (!sub) break;
    c = sub;
  }
  return c;
}

function* ancestry(c: Command): Generator<Command> {
  if (c.parent) yield* ancestry(c.parent);
  yield c;
}

export async function main(argv: string[]): Promise<number> {
  // A reader that goes away (`vfplane vf list | head`) is no failure of the command: the
  // rest of its output is dropped and it finishes as it would, its cleanups included (a
  // demo piped to head still tears its namespaces down), instead of dying of EPIPE.
  // So for stderr (`vfplane vf show x 2>&1 | grep -q …`): the exit code stays the
  // command's own (2 for a usage error), not 1 for the pipe.
  for (const out of [process.stdout, process.stderr]) {
    out.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    });
  }
  const program = await buildProgram(argv.slice(2));
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    // A failure an interrupt caused is not reported: the signal's cleanups run and exit.
    if (await interrupted()) return new Promise<number>(() => undefined);
    // Actions throw; this is the one place errors are reported (JSON too with --json).
    const json = argv.includes('--json');
    // `pcap … --out -` writes its records to stdout: a JSON error must not land in them.
    const outAt = argv.indexOf('--out');
    const out = outAt >= 0 ? argv[outAt + 1] : argv.find((a) => a.startsWith('--out='))?.slice(6);
    const jsonTo = out !== undefined && (await import('../packet/pcap.js')).isStdout(out) ? process.stderr : process.stdout;
    // `dataplane run --json` writes a line per event (ready, stopped): its error is one too,
    // a usage error commander caught included.
    const stream = [...ancestry(reached(program, argv.slice(2)))].map((x) => x.name()).join(' ').endsWith('dataplane run');
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err.code === 'commander.help') {
        // Usage shown because a command group got no command (`vfplane pf`, bare `vfplane`):
        // a usage error, said once more in a line (and as JSON with --json).
        if (err.exitCode === 0) return 0;
        const c = reached(program, argv.slice(2));
        const path = [...ancestry(c)].map((x) => x.name()).join(' ');
        return reportError(new UsageError(`${path} needs a command: one of ${c.commands.map((x) => x.name()).join(', ')} (run \`${path} --help\`)`), json, jsonTo, stream);
      }
      // commander has already printed its message to stderr; usage errors exit 2.
      // The same shape as every other error (kind: what reportError gives a usage error).
      if (json) printJson({ error: { message: err.message.replace(/^error: /, ''), exitCode: 2, kind: 'invalid' } }, jsonTo, stream);
      return 2;
    }
    return reportError(err, json, jsonTo, stream);
  }
}
