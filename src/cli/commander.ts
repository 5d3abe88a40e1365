// commander, loaded through require: it is a CommonJS package, and importing it as ESM
// goes through its esm.mjs wrapper and Node's scan of the CommonJS source for named
// exports, ~10 ms of every command's start here (17 ms instead of 28, measured with
// performance.now() around each form). The CLI imports commander from here only.
import { createRequire } from 'node:module';
import type * as C from 'commander';

const commander = createRequire(import.meta.url)('commander') as typeof C;

export const Command = commander.Command;
export type Command = C.Command;
export const Option = commander.Option;
export type Option = C.Option;
export const CommanderError = commander.CommanderError;
export type CommanderError = C.CommanderError;
