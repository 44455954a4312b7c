/**
 * The service-side view of a model generation (see schemas/manifest.schema.json and
 * encoders/README.md). Implemented by src/models/, the only module that imports onnxruntime.
 */
export type ContentModality = 'video' | 'audio' | 'text';
export type TowerName = ContentModality | 'user' | 'behaviour';

export interface VideoPreprocessing {
  frame_size: number;
  frames_per_segment: number;
  segment_seconds: number;
  mean: [number, number, number];
  std: [number, number, number];
  layout: 'NTCHW';
  resize: 'fill' | 'cover' | 'contain';
}
export interface AudioPreprocessing {
  sample_rate: number;
  segment_seconds: number;
  samples: number;
  mel?: Record<string, unknown>;
}
export interface TextPreprocessing {
  max_length: number;
  tokenizer: string;
}
export interface UserPreprocessing {
  max_items: number;
  time_gap_unit_seconds?: number;
}

export interface GenerationInfo {
  name: string;
  version: string;
  /** Dimension D of the joint space: every tower's output. */
  dim: number;
  towers: TowerName[];
  preprocessing: {
    video: VideoPreprocessing;
    audio: AudioPreprocessing;
    text: TextPreprocessing;
    user?: UserPreprocessing;
  };
}

/** One segment's frames: `frames_per_segment` RGB24 images, row-major HWC, each width x height. */
export interface FrameSegment {
  frames: Uint8Array[];
  width: number;
  height: number;
}

/** A user's recent items, oldest first, at most `preprocessing.user.max_items`. */
export interface UserHistory {
  /** Content vectors (joint space, dimension D) of the items, oldest first. */
  items: Float32Array[];
  /** Seconds between each event and the moment the vector is computed (>= 0). */
  ageSeconds: number[];
}

export interface Encoders {
  readonly generation: GenerationInfo;
  /** One L2-normalised vector per segment. Throws TOWER_MISSING when the generation has no video tower. */
  encodeFrames(segments: FrameSegment[]): Promise<Float32Array[]>;
  /** PCM mono float32 at `sample_rate`, one array per segment (padded or cut to `samples`). */
  encodeAudio(segments: Float32Array[]): Promise<Float32Array[]>;
  encodeText(texts: string[]): Promise<Float32Array[]>;
  /** Share of a text's words the text tokenizer does not know (its unknown token), in [0, 1]. */
  unknownWordShare(text: string): Promise<number>;
  /** User vectors in the behaviour space. Throws TOWER_MISSING when there is no user tower. */
  encodeUsers(histories: UserHistory[]): Promise<Float32Array[]>;
  /** Content vector (joint space) -> the item's vector in the behaviour space. */
  projectBehaviour(content: Float32Array[]): Promise<Float32Array[]>;
  has(tower: TowerName): boolean;
  close(): Promise<void>;
}
