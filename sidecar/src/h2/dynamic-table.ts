/**
 * The HPACK dynamic table (RFC 7541 2.3.2, 4): a ring of entries, newest first, whose size
 * (name + value + 32 per entry) never exceeds maxSize. The ring holds at most maxSize / 32
 * entries, so its arrays are bounded by the size limit, never by what a peer sends; they start
 * small and double as entries come, so an idle connection's tables cost little.
 * Strings are byte strings (latin1: one char per byte), so a string's length is its size.
 */

export const ENTRY_OVERHEAD = 32;
const INITIAL_SLOTS = 8;

export class DynamicTable {
  private names: string[] = [];
  private values: string[] = [];
  /** Slot of the newest entry; entries run backwards (mod capacity) from it. */
  private head = 0;
  private count = 0;
  private bytes = 0;
  private max = 0;

  constructor(maxSize: number) {
    this.setMaxSize(maxSize);
  }

  get length(): number { return this.count; }
  /** The table's size in RFC 7541 terms. */
  get size(): number { return this.bytes; }
  get maxSize(): number { return this.max; }

  /** Entry `i` (0 = newest) must exist. */
  name(i: number): string { return this.names[this.slot(i)]!; }
  value(i: number): string { return this.values[this.slot(i)]!; }

  private slot(i: number): number {
    const s = this.head - i;
    return s >= 0 ? s : s + this.names.length;
  }

  /** Adds an entry, evicting the oldest ones to make room; one larger than the table empties it (RFC 7541 4.4). */
  add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.max) { this.clear(); return; }
    while (this.bytes + size > this.max) this.evictOldest();
    if (this.count === this.names.length) this.resize(Math.min(this.count * 2, this.maxSlots()));
    const cap = this.names.length;
    this.head = this.head + 1 === cap ? 0 : this.head + 1;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.count++;
    this.bytes += size;
  }

  /** A new maximum size (a size update, RFC 7541 4.3): evicts down to it. */
  setMaxSize(maxSize: number): void {
    this.max = maxSize;
    while (this.bytes > this.max) this.evictOldest();
    // count <= maxSize / 32 < maxSlots after eviction
    if (this.names.length === 0) this.resize(Math.min(INITIAL_SLOTS, this.maxSlots()));
    else if (this.names.length > this.maxSlots()) this.resize(this.maxSlots());
  }

  /** The most slots the ring may need: one more than the most entries that fit. */
  private maxSlots(): number {
    return Math.floor(this.max / ENTRY_OVERHEAD) + 1;
  }

  /** Entries newest first, as [name, value] pairs (tests and diagnostics). */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = 0; i < this.count; i++) out.push([this.name(i), this.value(i)]);
    return out;
  }

  private evictOldest(): void {
    const s = this.slot(this.count - 1);
    this.bytes -= this.names[s]!.length + this.values[s]!.length + ENTRY_OVERHEAD;
    this.names[s] = '';
    this.values[s] = '';
    this.count--;
  }

  private clear(): void {
    while (this.count > 0) this.evictOldest();
  }

  private resize(cap: number): void {
    const names = new Array<string>(cap).fill('');
    const values = new Array<string>(cap).fill('');
    // Oldest at slot 0, newest at count - 1.
    for (let i = 0; i < this.count; i++) {
      names[this.count - 1 - i] = this.name(i);
      values[this.count - 1 - i] = this.value(i);
    }
    this.names = names;
    this.values = values;
    this.head = this.count === 0 ? cap - 1 : this.count - 1;
  }
}
