/**
 * A Prometheus histogram recorded in plain fields: per label value, a count per bucket, a sum and
 * a count. `samples` turns it into the `_bucket` / `_sum` / `_count` samples a Collector yields
 * (exposition.ts). Label values must be bounded (a type name, not a proxy id).
 */
import type { Sample } from './exposition';

interface Cell { buckets: number[]; sum: number; count: number }

export class LabelledHistogram {
  private readonly cells = new Map<string, Cell>();

  /** `bounds`: the upper bounds of the buckets, ascending (+Inf is added). */
  constructor(private readonly label: string, private readonly bounds: readonly number[]) {}

  observe(labelValue: string, value: number): void {
    let c = this.cells.get(labelValue);
    if (c === undefined) { c = { buckets: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 }; this.cells.set(labelValue, c); }
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]!) { c.buckets[i]!++; break; }
    c.sum += value;
    c.count++;
  }

  /** Observations so far for one label value. */
  count(labelValue: string): number { return this.cells.get(labelValue)?.count ?? 0; }

  *samples(): Iterable<Sample> {
    for (const [v, c] of this.cells) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += c.buckets[i]!;
        yield { suffix: '_bucket', labels: { [this.label]: v, le: String(this.bounds[i]) }, value: cumulative };
      }
      yield { suffix: '_bucket', labels: { [this.label]: v, le: '+Inf' }, value: c.count };
      yield { suffix: '_sum', labels: { [this.label]: v }, value: c.sum };
      yield { suffix: '_count', labels: { [this.label]: v }, value: c.count };
    }
  }
}
