/**
 * Turning scanned records into envelopes: a top-level value is an event (or an EventList or
 * an Azure record holding events), a list item is an event (or, in an Azure `records` list,
 * a record holding one). Events keep the bytes they came as when those can be written out
 * unchanged. Whatever is not an event is reported with its line and item index.
 *
 * @module
 */
import {
  type Decoded,
  decodeDocument,
  DecodeError,
  decodeLineWhole,
  envelopesOf,
  type Rejected,
} from "../../pipeline/core/decode.ts";
import { isTopLevelLine } from "../../pipeline/core/encode.ts";
import type { Envelope } from "../../pipeline/core/envelope.ts";
import { AUDIT_API_VERSION } from "../../pipeline/core/event.ts";
import type { ListKind, Scanned, ScannedList } from "./records.ts";

const decoder = new TextDecoder();
/** kube-apiserver before 1.22 could send and log the older version. */
const LIST_VERSIONS: readonly unknown[] = [AUDIT_API_VERSION, "audit.k8s.io/v1beta1"];

/**
 * Called for each input item that is not an event: `where` is `FILE:LINE`.
 *
 * @example
 * ```ts
 * const reject: Reject = (where, reason) => console.error(`${where}: not an event: ${reason}`);
 * ```
 */
export type Reject = (where: string, reason: string) => void;

function parse(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (err) {
    throw new DecodeError(`not JSON: ${(err as Error).message}`);
  }
}

/** The event held as a string in an Azure Monitor diagnostic-log record (`properties.log`). */
function azureEvent(record: unknown): unknown {
  const log = (record as { properties?: { log?: unknown } } | null)?.properties?.log;
  if (typeof log !== "string") return undefined;
  try {
    return JSON.parse(log);
  } catch (err) {
    throw new DecodeError(`properties.log is not JSON: ${(err as Error).message}`);
  }
}

/** Why an `EventList` (or Azure) header cannot hold events, or null. */
function headerProblem(list: ListKind, header: Uint8Array): string | null {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(decoder.decode(header));
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (list !== "items") return null;
  if (doc.kind !== undefined && doc.kind !== "EventList") {
    return `kind ${JSON.stringify(doc.kind)} is not EventList or Event`;
  }
  if (doc.apiVersion !== undefined && !LIST_VERSIONS.includes(doc.apiVersion)) {
    return `EventList apiVersion ${JSON.stringify(doc.apiVersion)} is not ${AUDIT_API_VERSION}`;
  }
  return null;
}

/**
 * Decodes the records of one input in order. Keeps the state of the list being read, so an
 * `EventList` of another kind is reported once and its items skipped.
 *
 * @example
 * ```ts
 * const events = new EventDecoder("audit.log", 64 << 20, reject);
 * const out: Envelope[] = [];
 * for (const s of scanner.push(chunk)) events.decode(s, out);
 * ```
 */
export class EventDecoder {
  /** The current list's items are not events (its header said so). */
  #skipList = false;

  constructor(readonly name: string, readonly maxRecordBytes: number, readonly reject: Reject) {}

  /** Appends the envelopes of `s` to `out`; reports what is not an event. */
  decode(s: Scanned, out: Envelope[]): void {
    const where = `${this.name}:${s.line}`;
    switch (s.type) {
      case "broken":
        this.#skipList = false;
        this.reject(where, s.reason);
        return;
      case "listStart":
      case "listEnd":
        this.#list(s, where);
        return;
    }
    const item = s.type === "item" ? `item ${s.index}: ` : "";
    if (s.type === "item" && this.#skipList) return;
    if (s.bytes === null) {
      this.reject(where, `${item}${s.size} bytes, more than the limit of ${this.maxRecordBytes}`);
      return;
    }
    try {
      const d = s.type === "value"
        ? this.#value(s.bytes, s.multiline)
        : this.#item(s.bytes, s.multiline, s.list, s.index);
      for (const r of d.rejected) this.reject(where, `item ${r.index}: ${r.reason}`);
      for (const e of d.envelopes) out.push(e);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.reject(where, `${item}${err.message}`);
    }
  }

  #list(s: ScannedList, where: string): void {
    if (s.type === "listStart") this.#skipList = false;
    else if (this.#skipList) return;
    if (s.header === null) return;
    const problem = headerProblem(s.list, s.header);
    if (problem === null) return;
    if (s.type === "listStart") {
      this.#skipList = true;
      this.reject(where, problem);
    } else {
      // The header's kind came after its items, which were read as events.
      this.reject(where, `${problem} (its ${s.count} items were read as events)`);
    }
  }

  /** A top-level value: one event, or a container that is not a streamed list. */
  #value(bytes: Uint8Array, multiline: boolean): Decoded {
    // A one-line v1 event keeps its bytes, so apply writes it as it came. Parsed whole, not
    // through decodeLine's lazy bodies: the tools read every event's size and many bodies,
    // and with the lazy path the 200 MB memory tests peaked at 161–181 MiB, over their bound.
    if (!multiline) {
      try {
        return decodeLineWhole(bytes);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        return this.#azureValue(bytes, err);
      }
    }
    const doc = parse(bytes);
    try {
      return decodeDocument(doc);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      return this.#azureValue(bytes, err);
    }
  }

  /** One Azure record on its own, else the error the value had. */
  #azureValue(bytes: Uint8Array, err: DecodeError): Decoded {
    let doc: unknown;
    try {
      doc = JSON.parse(decoder.decode(bytes));
    } catch {
      throw err;
    }
    const event = azureEvent(doc);
    if (event === undefined) throw err;
    return decodeDocument(event);
  }

  #item(bytes: Uint8Array, multiline: boolean, list: ListKind, index: number): Decoded {
    let doc = parse(bytes);
    if (list === "records") {
      doc = azureEvent(doc);
      if (doc === undefined) throw new DecodeError("record has no properties.log string");
      multiline = true; // its bytes are the record's, not the event's
    }
    const rejected: Rejected[] = [];
    const envelopes = envelopesOf([doc], rejected, index);
    const env = envelopes[0];
    if (env !== undefined && !multiline) {
      if (env.event.kind === undefined && env.event.apiVersion === undefined) env.item = bytes;
      else if (isTopLevelLine(bytes)) env.raw = bytes;
    }
    return { envelopes, rejected };
  }
}
