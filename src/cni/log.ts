// The plugin's log: JSON lines appended to logFile, or to stderr — never stdout, which
// carries the CNI result. Synchronous appends, so nothing is lost when the process exits
// right after the result is printed. Levels follow sriov-cni (cni-log): panic < error <
// warning < info < debug < verbose. pino was weighed and left out: ~65 ms to import on the
// project machine, for a process that logs a handful of lines per pod.
import * as fs from 'node:fs';

export const LOG_LEVELS = ['panic', 'error', 'warning', 'info', 'debug', 'verbose'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

type Fields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  error(msg: string, fields?: Fields): void;
  warning(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  debug(msg: string, fields?: Fields): void;
  verbose(msg: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Fields): Logger;
  /** Closes its logFile (`cni serve` runs many calls in one process); a later line opens it again. */
  close(): void;
}

/**
 * Opens a logFile to append to, as root, from a path a network config named: a regular
 * file only (a FIFO would block the call, and `cni serve` with it, until someone reads;
 * a device would take the lines as writes to it), never through a symlink at its last
 * component (one made in a directory others can write would lead anywhere).
 */
function openLogFile(file: string): number {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, 0o640);
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new Error('not a regular file');
  }
  // Only a file of the plugin's own: empty (new), or its first line one of these lines.
  // A network config may name any file in a log directory, and the plugin, root, would
  // otherwise append to (and at 100 MB rotate away) the host's own logs there: syslog, a
  // journal, another plugin's (helper-70).
  if (st.size > 0) {
    const head = Buffer.alloc(128);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    if (!OWN_LINE.test(head.subarray(0, n).toString('latin1'))) {
      fs.closeSync(fd);
      throw new Error('it is not a log file vfplane-cni made (its first line is not one of the plugin\'s): the plugin appends only to its own; name a new file');
    }
  }
  return fd;
}

/** How every line of the plugin's log starts (see `make` below). */
const OWN_LINE = /^\{"time":"\d{4}-\d\d-\d\dT[\d:.]+Z","level":"(panic|error|warning|info|debug|verbose)","msg":"/;

/** A logFile this large is rotated before the next line (sriov-cni's cni-log rotates at
 *  100 MB and keeps 5 backups, as here): a node's pods come and go for months, ~800 bytes
 *  of log a pod at info. */
export const LOG_MAX_BYTES = 100 * 1024 * 1024;
export const LOG_BACKUPS = 5;

/**
 * Moves FILE to FILE.1 (FILE.1 to FILE.2 … the oldest dropped) when the descriptor `fd`
 * opened on it has reached `max` bytes, and returns a descriptor on a new FILE; else `fd`.
 * Only the process whose descriptor is still on the file at the path rotates: one that
 * opened it before another rotated writes its lines to the backup, and nothing is lost
 * (two rotating at the very same moment may shift the backups twice: one generation lost).
 */
function rotated(file: string, fd: number, max: number): number {
  const st = fs.fstatSync(fd);
  if (st.size < max) return fd;
  try {
    const now = fs.statSync(file);
    if (now.ino !== st.ino || now.dev !== st.dev) return fd; // rotated by another call meanwhile
    for (let i = LOG_BACKUPS - 1; i >= 1; i--) {
      try {
        fs.renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      } catch {
        // no such backup yet
      }
    }
    fs.renameSync(file, `${file}.1`);
  } catch {
    return fd; // left as it is: the line still goes somewhere
  }
  fs.closeSync(fd);
  return openLogFile(file);
}

/** Whether the file at `fd` ends without a line end (read at its last byte). */
function endsInsideLine(fd: number): boolean {
  const size = fs.fstatSync(fd).size;
  if (size === 0) return false;
  const b = Buffer.alloc(1);
  return fs.readSync(fd, b, 0, 1, size - 1) === 1 && b[0] !== 0x0a;
}

/** Cuts `part` off the end of the file at `fd` if the file ends with it (no other writer
 *  appended since); else leaves it, for the next writer to end the line (endsInsideLine). */
function takeBack(fd: number, part: Buffer): void {
  if (!part.length) return;
  try {
    const size = fs.fstatSync(fd).size;
    if (size < part.length) return;
    const tail = Buffer.alloc(part.length);
    if (fs.readSync(fd, tail, 0, part.length, size - part.length) === part.length && tail.equals(part)) fs.ftruncateSync(fd, size - part.length);
  } catch {
    // left for the next writer
  }
}

export interface LoggerOptions {
  /** Default: "info" with a logFile, "warning" (to stderr, which the runtime logs)
   *  without: a config's warnings (a field read in another case, a likely typo) are seen. */
  level?: LogLevel;
  /** Absolute path; lines are appended. Without one, lines go to stderr. */
  file?: string;
  /** Added to every line: containerId, ifname, command, netns… */
  fields?: Fields;
  /** Where lines go without a file (tests). */
  stderr?: (line: string) => void;
  /** Rotate the file at this size (LOG_MAX_BYTES). */
  maxBytes?: number;
}

const RANK: Record<LogLevel, number> = { panic: 0, error: 1, warning: 2, info: 3, debug: 4, verbose: 5 };

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? (opts.file ? 'info' : 'warning');
  let fd: number | null | undefined; // undefined: not opened yet; null: could not open
  const toStderr = opts.stderr ?? ((line: string) => process.stderr.write(line));

  // A log that cannot be written must not fail the pod; say so once, on stderr.
  const giveUp = (what: string, err: unknown) => {
    if (typeof fd === 'number') fs.closeSync(fd);
    fd = null;
    toStderr(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: `cannot ${what} logFile ${opts.file}: ${(err as Error).message}; logging to stderr` }) + '\n');
  };
  /** What goes before this process's first line: a line end when the file ends inside
   *  one (a writer that found the filesystem full, or was killed mid-line). */
  let lead = '';
  const write = (line: string) => {
    if (opts.file) {
      if (fd === undefined) {
        try {
          fd = rotated(opts.file, openLogFile(opts.file), opts.maxBytes ?? LOG_MAX_BYTES);
          lead = endsInsideLine(fd) ? '\n' : '';
        } catch (err) {
          giveUp('open', err);
        }
      }
      if (fd !== null && fd !== undefined) {
        const buf = Buffer.from(lead + line);
        try {
          // One write(2) per line on an O_APPEND fd: concurrent plugin runs do not interleave.
          const n = fs.writeSync(fd, buf);
          if (n === buf.length) {
            lead = '';
            return;
          }
          // Short: the filesystem is full. The part written is taken back (when the file
          // still ends with it), so the file holds no half line; the rest go to stderr.
          takeBack(fd, buf.subarray(0, n));
          throw Object.assign(new Error(`${n} of ${buf.length} bytes written: no space left on its filesystem`), { code: 'ENOSPC' });
        } catch (err) {
          giveUp('write to', err);
        }
      }
    }
    toStderr(line);
  };

  const close = () => {
    if (typeof fd === 'number') fs.closeSync(fd);
    fd = undefined;
  };
  const make = (fields: Fields): Logger => {
    const log = (lvl: LogLevel) => (msg: string, extra?: Fields) => {
      if (RANK[lvl] > RANK[level]) return;
      write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields, ...extra }) + '\n');
    };
    return {
      level,
      error: log('error'),
      warning: log('warning'),
      info: log('info'),
      debug: log('debug'),
      verbose: log('verbose'),
      child: (more) => make({ ...fields, ...more }),
      close,
    };
  };
  return make({ plugin: 'vfplane-cni', ...opts.fields });
}

/** A logger that drops everything (tests, and callers with no context yet). */
export const nullLogger: Logger = {
  level: 'panic',
  error() {},
  warning() {},
  info() {},
  debug() {},
  verbose() {},
  child() {
    return nullLogger;
  },
  close() {},
};
