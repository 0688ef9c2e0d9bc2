// Mirrors the traits of atomemo_notebook/_widget.py (ChatWidget) and the shapes built in
// atomemo_notebook/_view_state.py. Python owns the truth; the browser renders it.

export type ErrorView = { code: string; message: string };

export type FileView = { filename: string; size: number; mime_type: string };

export type MessageView = {
  id: string;
  parent_id: string | null;
  query: string;
  file: FileView | null;
  answer: string;
  status: string;
  error: ErrorView | null;
  execution_id: string | null;
  created_at: string | null;
  has_timeline: boolean;
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
  tools: ToolView[];
};

export type TimelineView = {
  message_id: string | null;
  execution_id: string | null;
  status: string;
  execution_status: string | null;
  ttft_ms: number | null;
  total_ms: number | null;
  nodes: NodeView[];
  node_count: number;
  failures: number;
  anomalies: string[];
};

export type Variable = {
  label: string;
  variable: string;
  type: "string" | "number";
  required?: boolean;
  maxLength?: number | null;
  hidden?: boolean;
};

export type Header = {
  app_name?: string;
  app_version?: string;
  app_emoji?: string;
  app_color?: string | null;
  description?: string | null;
  offline?: boolean;
  demo_apps?: { slug: string; name: string }[];
  demo?: string | null;
  user_id?: string;
  conversation_id?: string | null;
  variables?: Variable[];
  inputs?: Record<string, unknown>;
};

export type LiveView = {
  key?: string;
  parent_id?: string | null;
  query?: string;
  file?: FileView | null;
  message_id?: string | null;
  status?: string;
};

export type Model = {
  header: Header;
  messages: MessageView[];
  leaf_id: string;
  timelines: Record<string, TimelineView>;
  live: LiveView;
  notice: { code?: string; message?: string; draft?: string };
  conversations: { id: string; name: string; updated_at: string | null }[];
  attachment: Partial<FileView>;
  focus_id: string;
  compact: boolean;
};

// Custom messages Python -> browser.
export type LiveMessage = {
  type: "live";
  key: string;
  seq: number;
  status: string;
  append?: string;
  reset?: string;
  message_id?: string | null;
  timeline?: TimelineView;
};

export type LiveSnapshot = {
  type: "live_snapshot";
  key: string;
  seq: number;
  text: string;
  status: string;
  message_id: string | null;
  timeline: TimelineView;
};

export type EventRow = {
  message_id: string | null;
  seq: number;
  offset_ms: number | null;
  event: string;
  data: string;
};

export type EventsPage = { type: "events"; req: number; rows: EventRow[]; total: number; types: string[] };
