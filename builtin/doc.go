// Package builtin holds the built-in stages: the metrics of the original
// haproxystats (SPEC §5), computed from a snapshot's `show info` table
// (Daemon) and from its `show stat` rows (Frontends, Backends, Servers).
//
// The stages are engine.Folders: they fold each batch of rows into
// per-object sums as the parser reads the files (aggregator: per object
// its rows, its rows with lbtot > 0, and per metric the sum of the column),
// so their memory is proportional to the frontends, backends and servers,
// never to the rows; and they tell the parser, per row kind, which columns
// they read (engine.KindColumner), so that a server row is not read past
// its last server column. An object keeps its slot from one snapshot to the
// next (the name numbers of the batches stay valid), so finding a row's
// object is a look-up, and a snapshot resets only the slots it used.
//
// Stages returns them in the original's order with Options from the
// [process] section. They are safe for concurrent use: every worker has
// its own Folds. Exclusions reads an exclusion file again for every
// snapshot, as the original did.
package builtin
