// The layout worker's bundled script, given to widget.ts as text by scripts/build.mjs.
declare module "virtual:layout-worker" {
  const source: string;
  export default source;
}
