/** The seeded PRNG tests share lives in shared/src/prng.ts (the bench uses it too). */
export { mulberry32 } from '../../shared/src/prng';
