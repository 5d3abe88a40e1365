// zod, as vfplane uses it. Every module takes its schemas from here (`import * as z from
// '../util/z.js'`), never from 'zod' itself: the build (scripts/bundle-zod.mjs) replaces
// dist/util/z.js with these exports bundled alone, ~190 KB of zod's ~850 (English messages
// only, no JSON Schema), which a command loads in ~20 ms instead of ~85: the most of any
// module that a `vfplane vf …` or `vfplane-cni` call loads, more than the rest of the call's
// own work. Under vitest this file re-exports zod as it is. Another value import of 'zod'
// would also be a second copy of its classes (instanceof then fails across them):
// test/cli/zod-bundle.test.ts refuses one.
export {
  array, boolean, enum, int, literal, looseObject, NEVER, number, object, preprocess, record, strictObject, string, union, unknown,
  ZodError, ZodObject, ZodOptional, ZodType,
} from 'zod';
export type { core, infer, RefinementCtx } from 'zod';
