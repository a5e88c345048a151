// The SDK with helpers for files on this machine (Node.js): predictFiles,
// uploadDir and uploadArchive. `import { ShoalClient } from
// "@shoal/client/node"` gives the client with them; everything else is as
// in "@shoal/client".
import { createHash } from "node:crypto";
import { lstat, readFile, readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { ShoalClient as BaseClient } from "./client.js";
import type { S } from "./client.js";
import { ShoalError } from "./errors.js";
import type { PredictOptions } from "./predict.js";
import { batchBytes, batches } from "./upload.js";
import type { Split, UploadItem, UploadOptions, UploadResult } from "./upload.js";

export * from "./index.js";

// MaxFile is the largest file a folder upload sends: one file travels in one
// stream message, which the server bounds at 64 MiB by default
// (--grpc.max-message-bytes); its bound on an image is usually smaller and
// refuses larger ones by name.
export const maxFileBytes = 64 << 20;

const splitFolders: Record<string, Split> = { train: "SPLIT_TRAIN", validation: "SPLIT_VALIDATION", test: "SPLIT_TEST" };

// Layout says where the files of a folder go: by their split folder
// (split/Label/file, without split), or all to one split (Label/file), with
// testFraction of them, in [0, 1), moved to the test split by a hash of
// each file's path.
export interface Layout {
  split?: Split | "train" | "validation" | "test";
  testFraction?: number;
}

function splitOf(s: Layout["split"]): Split {
  if (!s || s === "SPLIT_UNSPECIFIED") return "SPLIT_UNSPECIFIED";
  const v = splitFolders[s] ?? s;
  if (!Object.values(splitFolders).includes(v as Split)) {
    throw new ShoalError({ code: "INVALID_ARGUMENT", message: `split ${JSON.stringify(s)}: use train, validation or test` });
  }
  return v as Split;
}

// validateLayout checks the fields go together, as the CLI and the other
// SDKs do.
export function validateLayout(l: Layout): { split: Split; testFraction: number } {
  const split = splitOf(l.split);
  const f = l.testFraction ?? 0;
  const bad = (message: string) => new ShoalError({ code: "INVALID_ARGUMENT", message });
  if (!(f >= 0 && f < 1)) throw bad(`test fraction ${f}: want a share in [0, 1)`);
  if (f > 0 && split === "SPLIT_UNSPECIFIED") {
    throw bad("a test fraction goes with a split, for a folder laid out Label/file; a split/Label/file folder says its own test split");
  }
  if (f > 0 && split === "SPLIT_TEST") throw bad("a test fraction with the test split: every file goes to the test split already");
  return { split, testFraction: f };
}

// pathShare maps a slash-separated relative path to [0, 1) by its SHA-256,
// as the CLI does: the same path always lands on the same side of a test
// fraction, whatever else the folder holds.
export function pathShare(rel: string): number {
  const top = createHash("sha256").update(rel).digest().readBigUInt64BE(0);
  return Number(top >> 11n) / 2 ** 53;
}

// place gives a file's split, label and name from its path relative to the
// folder, or undefined when it is not where the layout wants files.
export function place(rel: string, l: { split: Split; testFraction: number }): { split: Split; label: string; name: string } | undefined {
  const parts = rel.split("/");
  if (l.split === "SPLIT_UNSPECIFIED") {
    const split = parts.length === 3 ? splitFolders[parts[0]] : undefined;
    return split && Object.hasOwn(splitFolders, parts[0]) ? { split, label: parts[1], name: parts[2] } : undefined;
  }
  if (parts.length !== 2) return undefined;
  const split = l.testFraction > 0 && pathShare(rel) < l.testFraction ? "SPLIT_TEST" : l.split;
  return { split, label: parts[0], name: parts[1] };
}

// FolderFile is one file of a folder to upload.
export interface FolderFile {
  path: string;
  rel: string;
  split: Split;
  label: string;
  name: string;
  size: number;
}

// FolderScan is what a folder holds: the files to send (in lexical order),
// the paths outside the layout, and files in the layout that cannot be sent
// (not regular files, too large), with the reason.
export interface FolderScan {
  files: FolderFile[];
  skipped: string[];
  refused: S<"v1FileRejection">[];
}

// scanFolder lists the files of root that the layout places. Hidden files
// and folders (.DS_Store, .git) and files at the top (README) are part of no
// layout and are passed over silently. A folder with no file in the layout
// throws INVALID_ARGUMENT, saying what it holds.
export async function scanFolder(root: string, layout: Layout = {}): Promise<FolderScan> {
  const l = validateLayout(layout);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) throw new ShoalError({ code: "INVALID_ARGUMENT", message: `${root}: not a folder` });
  const scan: FolderScan = { files: [], skipped: [], refused: [] };
  const top: string[] = [];
  const byDepth: Record<number, number> = {};
  const walk = async (dir: string, rel: string, depth: number): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const path = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (depth === 1) top.push(e.isDirectory() ? `${e.name}/` : e.name);
      if (e.isDirectory()) {
        await walk(path, r, depth + 1);
        continue;
      }
      const target = e.isSymbolicLink() ? await stat(path).catch(() => undefined) : await lstat(path);
      if (target?.isDirectory()) {
        scan.refused.push({ path: `${r}/`, reason: "symlinked folders are not followed" });
        continue;
      }
      byDepth[depth] = (byDepth[depth] ?? 0) + 1;
      if (depth === 1) continue;
      const p = place(r, l);
      if (!p) scan.skipped.push(r);
      else if (!target) scan.refused.push({ path: r, reason: "broken symlink" });
      else if (!target.isFile()) scan.refused.push({ path: r, reason: "not a regular file" });
      else if (target.size > maxFileBytes) {
        scan.refused.push({ path: r, reason: `${target.size} bytes, more than the limit of ${maxFileBytes} for one file sent` });
      } else scan.files.push({ path, rel: r, ...p, size: target.size });
    }
  };
  await walk(root, "", 1);
  if (scan.files.length === 0 && scan.refused.length === 0) throw nothingToUpload(root, l.split, top, byDepth);
  return scan;
}

function nothingToUpload(root: string, split: Split, top: string[], byDepth: Record<number, number>): ShoalError {
  const want = split === "SPLIT_UNSPECIFIED" ? "split/Label/file" : "Label/file";
  let m = `${root} holds no images laid out ${want}`;
  if (top.length === 0) {
    m += " (it is empty)";
  } else {
    m += ` (it holds ${top.slice(0, 5).join(", ")}${top.length > 5 ? ` and ${top.length - 5} more` : ""}`;
    const depths = [
      byDepth[2] ? `${byDepth[2]} files at Label/file` : "",
      byDepth[3] ? `${byDepth[3]} files at split/Label/file` : "",
    ].filter(Boolean);
    if (depths.length) m += `; ${depths.join(", ")}`;
    m += ")";
  }
  if (split === "SPLIT_UNSPECIFIED") {
    m += ": expected train/, validation/ or test/ folders holding one folder per label, e.g. train/Cat/1.jpg";
    if (byDepth[2]) m += '; for a folder laid out Label/file, upload it with { split: "train" } (and testFraction: 0.2 to hold out a test split)';
  } else {
    m += ": with a split given, expected one folder per label, e.g. Cat/1.jpg";
    if (byDepth[3]) m += "; a folder laid out split/Label/file needs no split";
  }
  return new ShoalError({ code: "INVALID_ARGUMENT", message: m });
}

// FolderUploadResult is what uploadDir did: the server's totals and
// rejections (the files this machine refused first among them), and the
// files outside the layout, which were not sent.
export interface FolderUploadResult extends UploadResult {
  skipped: string[];
}

export type FolderUploadOptions = Layout & UploadOptions;

export class ShoalClient extends BaseClient {
  // predictFiles reads image files and classifies them as predict does, in
  // one request.
  async predictFiles(paths: string[], options: PredictOptions): Promise<S<"v1PredictResponse">> {
    return this.predict(await Promise.all(paths.map((p) => readFile(p))), options);
  }

  // uploadDir uploads the images of a folder on this machine into a
  // dataset that exists, as `shoal dataset upload` does: laid out
  // split/Label/file, or, with split, Label/file (testFraction of it moved
  // to the test split by a hash of each path, as the CLI chooses). Files
  // are read a batch at a time. A folder with no file in its layout throws
  // INVALID_ARGUMENT, saying what it holds, before anything is sent.
  async uploadDir(dataset: string, dir: string, options: FolderUploadOptions = {}): Promise<FolderUploadResult> {
    const scan = await scanFolder(dir, options);
    const onProgress = options.onProgress ?? (() => {});
    const total = scan.files.reduce((a, f) => a + f.size, 0) || 1;
    // Files this machine refused count as the server counts its rejections.
    const counts = { seen: scan.refused.length, added: 0, duplicates: 0, rejected: scan.refused.length, conflicts: 0 };
    const rejections = [...scan.refused];
    let done = 0;
    for (const batch of batches(scan.files, options.maxBatchBytes ?? batchBytes, (f) => f.size)) {
      const items: UploadItem[] = [];
      for (const f of batch) items.push({ content: await readFile(f.path), fileName: f.name, split: f.split, label: f.label });
      const size = items.reduce((a, it) => a + (it.content as Uint8Array).byteLength, 0);
      const r = await this.uploadImages(dataset, { items }, {
        signal: options.signal,
        maxBatchBytes: Infinity,
        onProgress: (f) => onProgress(Math.min(1, (done + f * size) / total)),
      });
      done += size;
      for (const k of Object.keys(counts) as (keyof typeof counts)[]) counts[k] += Number(r.counts?.[k] ?? 0);
      rejections.push(...(r.rejections ?? []));
    }
    onProgress(1);
    return { counts, rejections, skipped: scan.skipped };
  }

  // uploadArchive uploads a .zip, .tar or .tar.gz archive laid out
  // split/Label/file into a dataset that exists; the server unpacks it.
  async uploadArchive(dataset: string, path: string, options: UploadOptions = {}): Promise<UploadResult> {
    if (!/\.(zip|tar|tar\.gz|tgz)$/i.test(path)) {
      throw new ShoalError({ code: "INVALID_ARGUMENT", message: `${path}: not a .zip, .tar or .tar.gz archive` });
    }
    const data = await readFile(path);
    return this.uploadImages(dataset, { archive: new Blob([data]), fileName: basename(path) }, options);
  }
}
