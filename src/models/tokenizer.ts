/**
 * The text tower's tokenizer: the generation's own tokenizer.json (+ tokenizer_config.json),
 * loaded through @huggingface/transformers from the generation folder with remote loading off,
 * so a generation never reaches for a model hub.
 */
import { basename, dirname } from 'node:path';
import { AutoTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';
import { wrap } from '../errors/index.ts';

export interface TokenBatch {
  /** [batch, maxLength] row-major token ids. */
  inputIds: BigInt64Array;
  /** [batch, maxLength]: 1 for a token, 0 for padding. */
  attentionMask: BigInt64Array;
  dims: [number, number];
}

export interface TextTokenizer {
  encode(texts: string[]): TokenBatch;
  /**
   * Share of the text's words the tokenizer does not know whole: the unknown token, or (an open-vocabulary
   * WordPiece tokenizer) split into subword pieces. 0 for a text with no words.
   */
  unknownShare(text: string): number;
}

// env is process-wide and from_pretrained reads localModelPath while it loads: one load at a time.
let queue: Promise<unknown> = Promise.resolve();

async function loadFromFolder(dir: string): Promise<PreTrainedTokenizer> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = dirname(dir) + '/';
  return AutoTokenizer.from_pretrained(basename(dir), { local_files_only: true });
}

function pack(rows: number[][], maxLength: number): BigInt64Array {
  const out = new BigInt64Array(rows.length * maxLength);
  rows.forEach((row, i) => row.forEach((v, j) => (out[i * maxLength + j] = BigInt(v))));
  return out;
}

/**
 * Loads the tokenizer in `dir` (the generation folder, holding tokenizer.json) and pads or
 * truncates every text to `maxLength` tokens. Special tokens are whatever the tokenizer's own
 * post-processor adds (none for the trainer's WordLevel tokenizer; [CLS]/[SEP] for a dropped-in BERT).
 */
export async function loadTokenizer(dir: string, maxLength: number): Promise<TextTokenizer> {
  const load = queue.then(() => loadFromFolder(dir));
  queue = load.catch(() => undefined);
  let tokenizer: PreTrainedTokenizer;
  try {
    tokenizer = await load;
  } catch (err) {
    throw wrap('MODEL_INVALID', `loading the tokenizer from ${dir}`, err);
  }
  return {
    encode(texts) {
      const enc = tokenizer(texts, { padding: 'max_length', truncation: true, max_length: maxLength, return_tensor: false });
      return {
        inputIds: pack(enc.input_ids, maxLength),
        attentionMask: pack(enc.attention_mask, maxLength),
        dims: [texts.length, maxLength],
      };
    },
    unknownShare(text) {
      const unk = (tokenizer as unknown as { unk_token_id?: number }).unk_token_id;
      const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
      if (words.length === 0) return 0;
      const unknown = words.filter((w) => {
        const ids = tokenizer.encode(w, { add_special_tokens: false });
        return ids.length !== 1 || ids[0] === unk;
      });
      return unknown.length / words.length;
    },
  };
}
