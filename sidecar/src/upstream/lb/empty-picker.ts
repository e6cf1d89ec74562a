/** The picker of a balancer with no hosts (before the first update, or after update([])). */
import type { Picker } from '../host';

export const EMPTY_PICKER: Picker = Object.freeze({ pick: () => undefined });
