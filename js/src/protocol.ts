// GENERATED from atomemo_notebook/views/_widget_protocol.py by scripts/gen_protocol.py;
// do not edit.
// CI checks it with `python scripts/gen_protocol.py --check`.

export const PROTOCOL_VERSION = 4;

export type Status = "streaming" | "succeeded" | "failed" | "stopped" | "recovered" | "querying" | "answering" | "waiting";

export type ErrorView = {
  code: string;
  message: string;
  /** The failing node's name, when the error is a node's. */
  node?: string | null;
  /** That node run's key in the message's timeline (a link target). */
  node_key?: string | null;
};

export type FileView = {
  filename: string;
  size: number;
  mime_type: string;
};

/** One version of a turn (regenerated or edited), labelled by its own question and answer. */
export type VersionView = {
  id: string;
  query: string;
  /** The answer's start, cut at VERSION_CHARS characters. */
  answer: string;
};

export type SiblingsView = {
  index: number;
  count: number;
  prev: string | null;
  next: string | null;
  /** Every version of this turn (at most MAX_VERSIONS, around the shown one), in order. */
  versions?: VersionView[];
};

/** A source the answer drew on (Dify's retriever resources). */
export type CitationView = {
  title: string;
  snippet: string;
  url: string | null;
  score: number | null;
  source: string | null;
};

/** A file the answer came with (Dify's message_file): only http(s) URLs are kept. */
export type AnswerFileView = {
  type: string;
  url: string;
};

export type FormFieldView = {
  name: string;
  /** text | paragraph | select | number */
  type: string;
  default: string | null;
  options: string[];
};

export type FormActionView = {
  id: string;
  title: string;
  /** primary | default | ..., as the system names its button styles. */
  style: string;
};

/** The form a paused run waits on (Dify's Human Input): the kernel answers it, so nothing here answers it by itself (no token). */
export type FormView = {
  form_id: string;
  node_title: string;
  /** Markdown, drawn sanitized like an answer (cut at FORM_CHARS). */
  content: string;
  fields: FormFieldView[];
  actions: FormActionView[];
  /** The server's epoch seconds: the view shows the time left. */
  expires_at: number | null;
  /** Why it cannot be answered here (a form too big to read): no buttons, this text. */
  refused: string | null;
};

/** One question and its answer on the shown path. */
export type TurnView = {
  id: string;
  parent_id: string | null;
  query: string;
  file: FileView | null;
  /** The answer, cut at ANSWER_CAP characters in the trait (see answer_chars). */
  answer: string;
  /** The whole answer's length: more than len(answer) means the view asks for the rest. */
  answer_chars: number;
  status: Status;
  error: ErrorView | null;
  execution_id: string | null;
  created_at: string | null;
  finished_at: string | null;
  has_timeline: boolean;
  siblings: SiblingsView;
  /** When we stopped listening but the server then finished the run: how many characters we had when we stopped (the answer shown is the server's whole one). */
  stopped_at: number | null;
  /** At most MAX_CITATIONS, each snippet cut at SNIPPET_CHARS. */
  citations?: CitationView[];
  /** Questions to ask next (the view shows them as chips under the last answer). */
  suggestions?: string[];
  files?: AnswerFileView[];
  /** The whole question's length: `query` is cut at QUERY_CAP characters in the trait. */
  query_chars?: number;
  /** A run's outputs as JSON text (a Dify workflow app's), cut at OUTPUTS_CAP: the view shows them as a collapsible tree. */
  outputs?: string | null;
  /** The form this turn waits on (status waiting), answered from the view. */
  form?: FormView | null;
  /** How the turn's last form ended ("answered: Approve", or that it expired). */
  input_outcome?: string | null;
  /** like | dislike: how the answer was rated (capabilities.feedback). */
  feedback?: string | null;
};

export type TranscriptView = {
  leaf_id: string;
  /** The newest turns of the path to leaf_id, oldest first (a window: see `older`). */
  turns: TurnView[];
  /** How many turns of the path come before the window (loaded on scroll). */
  older: number;
};

export type ToolView = {
  key: string;
  name: string;
  status: string;
  start_ms: number | null;
  end_ms: number | null;
  duration_ms: number | null;
  args: string | null;
  result: string | null;
  anomaly: string | null;
};

/** A model's thinking (Dify's reasoning_chunk, or an answer's `<think>` block): shown collapsed as "Thinking…", never part of the answer. */
export type ReasoningView = {
  /** Its newest REASONING_CAP characters (a long thought is cut at its start). */
  text: string;
  /** The whole thought's length. */
  chars: number;
  /** The thinking is complete: the block closes. */
  final: boolean;
};

export type NodeView = {
  key: string;
  node_id: string;
  name: string;
  type: string;
  status: string;
  start_ms: number | null;
  end_ms: number | null;
  duration_ms: number | null;
  error: string | null;
  output: string | null;
  out_ports: number[];
  anomaly: string | null;
  /** Nesting under a Loop or an agent (0 at the top), for indenting children. */
  depth: number;
  tools: ToolView[];
  /** Known only after the fact (OdysseyAI's steps): no timing, so no bar is drawn. */
  reported?: boolean;
  /** The node's thinking, when its model streamed some. */
  reasoning?: ReasoningView | null;
};

export type GraphNodeView = {
  id: string;
  name: string;
  type: string;
  /** The Loop/Iteration node it runs inside, if any. */
  parent: string | null;
};

export type GraphEdgeView = {
  source: string;
  target: string;
  label: string | null;
};

/** The workflow as its system publishes it (Atomemo's app snapshot, Pipelit's definition). */
export type GraphStructureView = {
  nodes: GraphNodeView[];
  edges: GraphEdgeView[];
  /** More nodes than MAX_GRAPH_NODES: the rest are not drawn. */
  cut: boolean;
};

export type TimelineView = {
  message_id: string | null;
  execution_id: string | null;
  status: Status;
  execution_status: string | null;
  ttft_ms: number | null;
  total_ms: number | null;
  nodes: NodeView[];
  node_count: number;
  failures: number;
  anomalies: string[];
  /** The edges this run reveals (predecessors, start order, loops): the Graph tab draws them where the system publishes no graph. */
  edges?: GraphEdgeView[];
  /** The answer's own thinking (a `<think>` block at its start), shown above the answer. */
  reasoning?: ReasoningView | null;
};

export type Variable = {
  label: string;
  variable: string;
  type: "string" | "number";
  required?: boolean;
  maxLength?: number | null;
  hidden?: boolean;
};

export type DemoAppView = {
  slug: string;
  name: string;
};

/** What the connected system can do: the view shows only controls that work. */
export type Capabilities = {
  token_streaming: boolean;
  /** server: Stop cancels the run; client: Stop only stops listening (the run may finish). */
  stop: "server" | "client";
  branching: boolean;
  files: boolean;
  /** Why regenerate/edit are missing, shown in the view when branching is False. */
  regenerate_reason?: string;
  /** False: one conversation only (no list to reopen). */
  conversations?: boolean;
  /** clear: "New chat" deletes the one conversation's history (after a confirmation). */
  new_conversation?: "new" | "clear";
  /** What a stopped turn says on this system (default: the generic note for its `stop`). */
  stop_note?: string;
  /** Answers can be rated like/dislike (with a comment). */
  feedback?: boolean;
  /** Why they cannot, where the system takes no rating. */
  feedback_reason?: string;
};

export type HeaderView = {
  app_name?: string;
  app_version?: string;
  app_emoji?: string;
  app_color?: string | null;
  description?: string | null;
  system?: string;
  /** The system's name as the header's chip shows it; empty: no chip (the home system). */
  system_label?: string;
  offline?: boolean;
  demo_apps?: DemoAppView[];
  demo?: string | null;
  user_id?: string;
  conversation_id?: string | null;
  variables?: Variable[];
  inputs?: Record<string, unknown>;
  /** Example questions for the empty state. */
  examples?: string[];
  capabilities?: Capabilities;
  /** The published workflow graph; None: the Graph tab infers it from each run. */
  graph?: GraphStructureView | null;
  /** Set only in an exported file (_export.py): the note it shows; the view is read-only. */
  read_only?: string;
  /** A replayed reply (ChatWidget.replay) the view opens in time travel, at its start. */
  travel?: string;
  /** A run takes inputs, not a question (a Dify workflow app): the inputs form is the message. */
  takes_inputs?: boolean;
};

export type LiveView = {
  key?: string;
  parent_id?: string | null;
  /** Cut at QUERY_CAP characters (see query_chars). */
  query?: string;
  query_chars?: number;
  file?: FileView | null;
  message_id?: string | null;
  status?: Status;
};

export type NoticeView = {
  code?: string;
  message?: string;
  draft?: string;
};

export type ConversationView = {
  id: string;
  name: string;
  updated_at: string | null;
};

export type AttachmentView = {
  filename?: string;
  size?: number;
  mime_type?: string;
};

/** A delta of the streaming reply: text to append (or the whole text to reset to). */
export type LiveMessage = {
  type: "live";
  key: string;
  seq: number;
  status: Status;
  append?: string;
  reset?: string;
  message_id?: string | null;
  timeline?: TimelineView;
};

/** The streaming reply so far, for a view that (re)appears mid-stream. */
export type LiveSnapshot = {
  type: "live_snapshot";
  key: string;
  seq: number;
  text: string;
  status: Status;
  message_id: string | null;
  timeline: TimelineView;
};

export type Command = {
  type: "command";
  id: number;
  name: string;
  args: Record<string, unknown>;
};

export type CommandReply = {
  type: "reply";
  id: number;
  ok: boolean;
  result?: unknown;
  error?: ErrorView;
};

export type NoArgs = {
};

export type SendArgs = {
  text: string;
};

export type MessageArgs = {
  message_id: string;
};

export type EditArgs = {
  message_id: string;
  text: string;
};

export type OpenArgs = {
  id: string;
};

export type DemoArgs = {
  slug: string;
};

export type InputsArgs = {
  inputs: Record<string, string>;
};

/** The file's bytes travel as the message's one binary buffer. */
export type AttachArgs = {
  filename: string;
  mime_type: string | null;
};

export type EventsArgs = {
  message_id: string | null;
  event_filter: string | null;
  search: string | null;
  offset: number;
  limit: number;
};

export type DetailArgs = {
  message_id: string;
  key: string;
};

export type EventRow = {
  message_id: string | null;
  seq: number;
  offset_ms: number | null;
  event: string;
  data: string;
};

export type EventsPage = {
  rows: EventRow[];
  total: number;
  offset: number;
  types: string[];
  messages: string[];
};

export type AnswerResult = {
  message_id: string;
  answer: string;
  /** The whole question ("" for a file): the trait holds it cut at QUERY_CAP, an edit needs all of it. */
  query: string;
};

export type DetailResult = {
  title: string;
  sections: ([string, string | null])[];
};

/** An answer to the form a turn waits on: the kernel sends it (the token never leaves it). */
export type RespondArgs = {
  message_id: string;
  action: string;
  inputs: Record<string, string>;
};

/** Rate an answer: like, dislike, or null to take the rating back; a comment beside it. */
export type FeedbackArgs = {
  message_id: string;
  rating: "like" | "dislike" | null;
  comment: string | null;
};

export type CompareArgs = {
  a: string;
  b: string;
};

/** A piece of an answer in a word diff: in both, only in a (del), only in b (add). */
export type SegmentView = {
  op: "same" | "del" | "add";
  text: string;
};

/** One node run of either reply, aligned with the same run in the other. */
export type CompareRowView = {
  node_name: string;
  node_type: string;
  ran_in: "both" | "a only" | "b only";
  status_a: string | null;
  status_b: string | null;
  duration_ms_a: number | null;
  duration_ms_b: number | null;
  output_differs: boolean;
  output_a: string | null;
  output_b: string | null;
};

export type CompareResult = {
  answer_a: SegmentView[];
  answer_b: SegmentView[];
  /** The answers were longer than the diff reads word by word: their tails are compared whole. */
  truncated: boolean;
  status_a: string | null;
  status_b: string | null;
  total_ms_a: number | null;
  total_ms_b: number | null;
  rows: CompareRowView[];
};

export type TapeArgs = {
  /** A settled turn's id, or the live reply's key. */
  message_id: string;
  /** Events the browser already has (0: from the start); a live reply's tape is asked again. */
  since: number;
  /** Patches the browser already has (a streaming reply's end may patch an event it has). */
  patches: number;
};

/** What event `e` (0-based) changed, as a live message says it: text appended or replaced, the node runs that changed (index, new view), the timeline's other fields that changed. */
export type TapePatch = {
  e: number;
  append?: string;
  reset?: string;
  nodes?: [number, NodeView][];
  summary?: Record<string, unknown>;
};

/** A reply's run as patches, one fold of its event log (tape.py): the browser replays them, with checkpoints, to show any moment. Events without a visible change have no patch. */
export type TapeView = {
  message_id: string | null;
  since: number;
  /** Events covered so far (since + len(offsets_ms)). */
  events: number;
  offsets_ms: number[];
  names: string[];
  patch_since: number;
  patches: TapePatch[];
  /** The reply ended and every event is in: no more to ask for. */
  done: boolean;
  /** Why the tape stops short of the run, said plainly (too many events or characters). */
  cut: string | null;
};

/** Where the widget's Export button saved the conversation (the kernel's working directory). */
export type ExportResult = {
  path: string;
  bytes: number;
  /** Earlier turns not in the file (a long conversation keeps its newest turns). */
  left_out: number;
};

/** One row of the results table (text cut short: the DataFrame has it whole). */
export type EvalRowView = {
  /** Its place in the table (what a click selects): the input row, or one ask of it with repeats. */
  row: number;
  /** What the table shows for it: the input row's number, and which repeat ("3 · 2/5"). */
  label: string;
  query: string;
  status: string;
  answer: string;
  error: string | null;
  failed_node: string | null;
  total_s: number | null;
  scores: Record<string, number | boolean | null>;
};

export type EvalProgressView = {
  total: number;
  done: number;
  failed: number;
  running: number;
  stopped: number;
  rows_per_s: number;
  elapsed_s: number;
  eta_s: number | null;
  finished: boolean;
  /** Why the evaluation itself failed (not a row), which ended it; null while it is well. */
  error: string | null;
  /** Why no row is asked yet (another evaluation is writing the same cache); null otherwise. */
  waiting: string | null;
  /** With repeats, `done` and `total` count asks; these count input rows (done: every repeat ended). */
  repeats?: number;
  rows_done?: number;
  rows_total?: number;
};

export type EvalTurnView = {
  query: string;
  answer: string;
  status: string;
  error: string | null;
};

/** One of a repeated row's asks, beside the one open: a click opens it. */
export type EvalAskView = {
  /** Its place in the table (what a click selects). */
  row: number;
  label: string;
  status: string;
  /** Every score that is a verdict passed (null: none is, or it was not scored). */
  passed: boolean | null;
};

/** The selected row's run: its turns and their timelines. */
export type EvalDetailView = {
  row?: number;
  label?: string;
  turns?: EvalTurnView[];
  timelines?: TimelineView[];
  /** Whether the system streams tokens (the timeline says "first token" or "answer"). */
  tokens?: boolean;
  /** With repeats: every ask of the open row (the open one among them), each to open. */
  asks?: EvalAskView[];
};

/** One paired row of a comparison's table (text cut short: `comparison.df` has it whole). */
export type ComparisonRowView = {
  /** Its place in the comparison's table (`comparison.df`'s index): what a click selects. */
  row: number;
  /** The input row's number, and which repeat ("3 · 2/5"). */
  label: string;
  query: string;
  flip: "regressed" | "improved" | "";
  status_a: string;
  status_b: string;
  answer_changed: boolean;
  scores_a: Record<string, number | boolean | null>;
  scores_b: Record<string, number | boolean | null>;
};

/** The selected row's two runs side by side: the answers' word diff and the node runs aligned, as the chat's Compare tab draws them; each run's error and scores. */
export type ComparisonPairView = {
  row?: number;
  label?: string;
  query?: string;
  flip?: string;
  compare?: CompareResult;
  error_a?: string | null;
  error_b?: string | null;
  /** (score, A's value, B's value) for every score of either run. */
  scores?: ([string, number | boolean | null, number | boolean | null])[];
};

/** Every synced trait of ChatWidget: the anywidget model. */
export type Model = {
  protocol: number;
  header: HeaderView;
  transcript: TranscriptView;
  timelines: Record<string, TimelineView>;
  live: LiveView;
  notice: NoticeView;
  conversations: ConversationView[];
  attachment: AttachmentView;
  focus_id: string;
  compact: boolean;
};

/** Every synced trait of EvalWidget (the results table of evaluate()). */
export type EvalModel = {
  protocol: number;
  system: string;
  progress: EvalProgressView;
  rows: EvalRowView[];
  hidden_rows: number;
  score_columns: string[];
  selected: number;
  detail: EvalDetailView;
};

/** Every synced trait of ComparisonWidget (compare(a, b) in the notebook). */
export type ComparisonModel = {
  protocol: number;
  title: string;
  verdict: string[];
  rows: ComparisonRowView[];
  hidden_rows: number;
  score_columns: string[];
  selected: number;
  pair: ComparisonPairView;
};

/** Every command the browser may send, with its arguments and its result. */
export type Commands = {
  hello: { args: NoArgs; result: LiveSnapshot | null };
  send: { args: SendArgs; result: null };
  stop: { args: NoArgs; result: null };
  regenerate: { args: MessageArgs; result: null };
  edit: { args: EditArgs; result: null };
  select: { args: MessageArgs; result: null };
  new_conversation: { args: NoArgs; result: null };
  open_conversation: { args: OpenArgs; result: null };
  pick_demo: { args: DemoArgs; result: null };
  set_inputs: { args: InputsArgs; result: null };
  run: { args: InputsArgs; result: null };
  attach: { args: AttachArgs; result: null };
  detach: { args: NoArgs; result: null };
  load_older: { args: NoArgs; result: null };
  answer: { args: MessageArgs; result: AnswerResult };
  detail: { args: DetailArgs; result: DetailResult };
  events: { args: EventsArgs; result: EventsPage };
  compare: { args: CompareArgs; result: CompareResult };
  tape: { args: TapeArgs; result: TapeView };
  export_html: { args: NoArgs; result: ExportResult };
  respond: { args: RespondArgs; result: null };
  feedback: { args: FeedbackArgs; result: null };
};

export type CommandName = keyof Commands;
