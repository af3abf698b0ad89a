// Shared state of the page: the record store, the filter, the rows shown, the dirty
// flags and the frame scheduler. It imports nothing of the page, so every module can
// import it without a cycle. Values that change live on objects (`view`, `dirty`):
// an imported `let` cannot be reassigned by the module that imports it.
//
// Each field of `view` has one owner, the only module that writes it (assigns it or
// changes what it holds); any module reads it, and the others change it through the
// owner's functions. tests/test_viewer_page_state.py checks this table against the
// code.
//
//   field          owner           changed through
//   base           filtering.js    refilter, filterArrived, resetRows
//   rows           filtering.js    refilter, filterArrived, resetRows, showInstead, showFiltered
//   timeRows       filtering.js    refilter, filterArrived, resetRows
//   timeOrder      filtering.js    refilter, filterArrived, resetRows, showInstead, showFiltered
//   selected       selection.js    setSelected, clearSelection, evictSelection
//   follow         follow.js       setFollow
//   newCount       follow.js       setFollow, markNew, clearNew
//   extraCols      table.js        addColumn, removeColumn
//   renderVersion  table.js        buildPool, redrawEveryRow
//   recordings     messages.js     onMessage, resetAll
//   ready          messages.js     onMessage, resetAll
//   maxRecords     messages.js     setMaxRecords
//   connected      connection.js   connect
//   colors         panels.js       refreshColors
//   context        context.js      showContext, leaveContext, dropContext
//
// `view` is sealed: assigning a field it does not have throws.

import { Store, Filter, IntVec } from "./store.js";

export const store = new Store();
export const filter = new Filter();

/** Timings of the last filter run, table draw and batch parse (read by tests and benchmarks). */
export const timings = { filterMs: 0, redrawMs: 0, lastBatchParseMs: 0 };
timings.contextMs = 0; // the last "show context" (context.js): finding the rows and drawing them
timings.contextFindMs = 0; // ... of which finding the rows
// the facets and patterns panels (facets.js, patterns.js): counting alone, and with the panel's DOM
Object.assign(timings, { facetsComputeMs: 0, facetsMs: 0, patternsComputeMs: 0, patternsMs: 0 });

/** What the next frame must redo. */
export const dirty = { filter: false, table: true, timeline: true, plot: true, side: true, detail: false };

const base = new IntVec(1 << 16);

/** The mutable state of the view, shared by the modules (owners: see above). */
export const view = Object.seal({
  base,                      // rows passing all filters but time
  rows: base,                // rows shown (base, or timeRows: base within the time range)
  timeRows: new IntVec(1024),
  timeOrder: false,          // base and rows are in time order (merged view), not store order
  selected: -1,              // store row of the selected record
  follow: true,
  newCount: 0,               // rows arrived while not following (the "N new" badge)
  extraCols: [],             // extra keys shown as columns
  recordings: [],            // the last `recordings` snapshot
  ready: false,
  connected: false,
  renderVersion: 0,          // bumped when every drawn row must be redrawn
  colors: null,              // theme colours for the canvases
  maxRecords: 2_000_000,     // the tab keeps at most this many; the oldest go first
  context: null,             // the context view shown instead of the filtered rows (context.js), or null
});

/** The test hooks (`window.rerunLogging`); hooks.js adds the functions. */
export const api = {
  ready: false,
  connected: false,
  timings,
  onDraw: null,
  lastDownload: null,
};

// ---------------------------------------------------------------------------- scheduling

let frameFn = () => {};
let frameRequested = false;

/** Set the function run at the next animation frame (app.js: the frame loop). */
export function onFrame(fn) { frameFn = fn; }

/** Ask for one frame (several calls before it runs give one frame). */
export function schedule() {
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(runFrame);
  }
}

function runFrame() {
  frameRequested = false;
  frameFn();
}
