//! Building a dataset's overview at pack time (see `store::overview` for
//! what it holds): one parallel pass over the packed rows.

use crate::geo::QBITS;
use crate::store::column::CatColumn;
use crate::store::overview::{MAX_CATEGORIES, MAX_LEVEL, MIN_LEVEL, padded};
use crate::store::{
    Dataset, OVERVIEW_FILE, OverviewColumn, OverviewCounts, OverviewInfo, OverviewLevel, QX, QY,
};
use crate::tally::Tally;
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// One level's cells while building.
#[derive(Default)]
struct Cells {
    x: Vec<u32>,
    y: Vec<u32>,
    count: Vec<u32>,
    /// Per kept column: cells × categories.
    cats: Vec<Vec<u32>>,
}

impl Cells {
    fn new(ncol: usize) -> Cells {
        Cells {
            cats: vec![Vec::new(); ncol],
            ..Cells::default()
        }
    }

    fn len(&self) -> usize {
        self.x.len()
    }

    /// Append `o`, merging its first cell into our last when they are one.
    fn append(&mut self, o: Cells, ncats: &[usize]) {
        let mut skip = 0;
        if let (Some(&lx), Some(&ly), Some(&fx), Some(&fy)) =
            (self.x.last(), self.y.last(), o.x.first(), o.y.first())
        {
            if (lx, ly) == (fx, fy) {
                *self.count.last_mut().expect("non-empty") += o.count[0];
                for (ci, &k) in ncats.iter().enumerate() {
                    let n = self.cats[ci].len();
                    for j in 0..k {
                        self.cats[ci][n - k + j] += o.cats[ci][j];
                    }
                }
                skip = 1;
            }
        }
        self.x.extend_from_slice(&o.x[skip..]);
        self.y.extend_from_slice(&o.y[skip..]);
        self.count.extend_from_slice(&o.count[skip..]);
        for (ci, &k) in ncats.iter().enumerate() {
            self.cats[ci].extend_from_slice(&o.cats[ci][skip * k..]);
        }
    }

    /// The next coarser level: consecutive cells with the same parent merge
    /// (a quadtree cell is one contiguous run of the Hilbert curve).
    fn coarser(&self, ncats: &[usize]) -> Cells {
        let mut out = Cells::new(ncats.len());
        for i in 0..self.len() {
            let (x, y) = (self.x[i] >> 1, self.y[i] >> 1);
            let same = out.x.last() == Some(&x) && out.y.last() == Some(&y);
            if same {
                *out.count.last_mut().expect("non-empty") += self.count[i];
            } else {
                out.x.push(x);
                out.y.push(y);
                out.count.push(self.count[i]);
            }
            for (ci, &k) in ncats.iter().enumerate() {
                let src = &self.cats[ci][i * k..(i + 1) * k];
                if same {
                    let n = out.cats[ci].len();
                    for (d, s) in out.cats[ci][n - k..].iter_mut().zip(src) {
                        *d += s;
                    }
                } else {
                    out.cats[ci].extend_from_slice(src);
                }
            }
        }
        out
    }
}

const NLEVELS: usize = (QBITS - MIN_LEVEL + 1) as usize;

/// Per-partition run lengths at every level 8..=32. The first and last run
/// of each level may continue in the neighbouring partitions.
struct Runs {
    /// Cell of the partition's first and last row at each level.
    first_cell: [(u32, u32); NLEVELS],
    last_cell: [(u32, u32); NLEVELS],
    first: [u64; NLEVELS],
    /// Length of the last run, when it differs from the first.
    last: [Option<u64>; NLEVELS],
    inner: Vec<Tally>,
}

fn cell_at(qx: u32, qy: u32, level: u32) -> (u32, u32) {
    let s = QBITS - level;
    if s >= 32 { (0, 0) } else { (qx >> s, qy >> s) }
}

fn partition_runs(qx: &[u32], qy: &[u32]) -> Option<Runs> {
    let n = qx.len();
    if n == 0 {
        return None;
    }
    let mut start = [0usize; NLEVELS];
    let mut first: [Option<u64>; NLEVELS] = [None; NLEVELS];
    let mut inner = vec![Tally::default(); NLEVELS];
    for i in 1..n {
        // Levels up to `common` keep both rows in one cell.
        let common = (qx[i] ^ qx[i - 1])
            .leading_zeros()
            .min((qy[i] ^ qy[i - 1]).leading_zeros());
        let lo = (common + 1).max(MIN_LEVEL);
        for level in lo..=QBITS {
            let l = (level - MIN_LEVEL) as usize;
            let len = (i - start[l]) as u64;
            match first[l] {
                None => first[l] = Some(len),
                Some(_) => inner[l].add(len),
            }
            start[l] = i;
        }
    }
    let mut runs = Runs {
        first_cell: [(0, 0); NLEVELS],
        last_cell: [(0, 0); NLEVELS],
        first: [0; NLEVELS],
        last: [None; NLEVELS],
        inner,
    };
    for l in 0..NLEVELS {
        let level = MIN_LEVEL + l as u32;
        runs.first_cell[l] = cell_at(qx[0], qy[0], level);
        runs.last_cell[l] = cell_at(qx[n - 1], qy[n - 1], level);
        let tail = (n - start[l]) as u64;
        match first[l] {
            None => runs.first[l] = tail,
            Some(f) => {
                runs.first[l] = f;
                runs.last[l] = Some(tail);
            }
        }
    }
    Some(runs)
}

/// Points per non-empty cell at every level 8..=32, from partitions in
/// Hilbert order.
fn count_distributions(ds: &Dataset) -> Vec<Vec<(u64, u64)>> {
    // The runs inside each partition merge as they are made (a tally per
    // level per partition, kept until the end, took gigabytes at a billion
    // rows); only the partitions' edge runs are kept, in order.
    let (mut pieces, inner) = ds
        .partitions
        .par_iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let runs = partition_runs(p.qx(), p.qy());
            ds.release(i, 0..p.len(), &[QX, QY]);
            runs.map(|r| (i, r))
        })
        .fold(
            || (Vec::new(), vec![Tally::default(); NLEVELS]),
            |(mut pieces, mut tallies), (i, mut runs)| {
                for (t, r) in tallies.iter_mut().zip(&runs.inner) {
                    t.extend(r);
                }
                runs.inner = Vec::new();
                pieces.push((i, runs));
                (pieces, tallies)
            },
        )
        .reduce(
            || (Vec::new(), vec![Tally::default(); NLEVELS]),
            |(mut a, mut ta), (b, tb)| {
                a.extend(b);
                for (t, o) in ta.iter_mut().zip(&tb) {
                    t.extend(o);
                }
                (a, ta)
            },
        );
    pieces.sort_unstable_by_key(|p| p.0);
    let pieces: Vec<Runs> = pieces.into_iter().map(|p| p.1).collect();
    (0..NLEVELS)
        .into_par_iter()
        .map(|l| {
            let mut tally = Tally::default();
            let mut carry: Option<((u32, u32), u64)> = None;
            for p in &pieces {
                let cell = p.first_cell[l];
                carry = match carry {
                    Some((c, n)) if c == cell => Some((c, n + p.first[l])),
                    Some((_, n)) => {
                        tally.add(n);
                        Some((cell, p.first[l]))
                    }
                    None => Some((cell, p.first[l])),
                };
                if let Some(last) = p.last[l] {
                    if let Some((_, n)) = carry.take() {
                        tally.add(n);
                    }
                    carry = Some((p.last_cell[l], last));
                }
            }
            if let Some((_, n)) = carry {
                tally.add(n);
            }
            tally.extend(&inner[l]);
            tally.sorted()
        })
        .collect()
}

/// Cells of the finest level, from partitions in Hilbert order.
fn finest_cells(ds: &Dataset, level: u32, cols: &[(String, usize)]) -> Cells {
    let ncats: Vec<usize> = cols.iter().map(|c| c.1).collect();
    let read: Vec<&str> = [QX, QY]
        .into_iter()
        .chain(cols.iter().map(|c| c.0.as_str()))
        .collect();
    let pieces: Vec<Cells> = ds
        .partitions
        .par_iter()
        .enumerate()
        .map(|(pi, p)| {
            let mut cells = Cells::new(cols.len());
            let codes: Vec<Option<CatColumn>> = cols
                .iter()
                .map(|(name, _)| p.column(name).and_then(CatColumn::new))
                .collect();
            let (qx, qy) = (p.qx(), p.qy());
            for i in 0..qx.len() {
                let (x, y) = cell_at(qx[i], qy[i], level);
                if cells.x.last() != Some(&x) || cells.y.last() != Some(&y) {
                    cells.x.push(x);
                    cells.y.push(y);
                    cells.count.push(0);
                    for (v, &k) in cells.cats.iter_mut().zip(&ncats) {
                        v.resize(v.len() + k, 0);
                    }
                }
                *cells.count.last_mut().expect("pushed") += 1;
                for (ci, &k) in ncats.iter().enumerate() {
                    if let Some(c) = codes[ci].as_ref().and_then(|c| c.get(i)) {
                        if c < k {
                            let at = cells.cats[ci].len() - k + c;
                            cells.cats[ci][at] += 1;
                        }
                    }
                }
            }
            ds.release(pi, 0..qx.len(), &read);
            cells
        })
        .collect();
    let mut all = Cells::new(cols.len());
    for p in pieces {
        all.append(p, &ncats);
    }
    all
}

/// Compute the overview of a packed dataset and write it to `dir`
/// ([`OVERVIEW_FILE`]), returning its layout for the manifest. `max_level`
/// is clamped to 8..=16.
pub fn build(ds: &Dataset, dir: &Path, max_level: u32) -> Result<OverviewInfo, std::io::Error> {
    let max_level = max_level.clamp(MIN_LEVEL, MAX_LEVEL);
    let cols: Vec<(String, usize)> = ds
        .manifest
        .columns
        .iter()
        .filter(|c| {
            c.kind == crate::store::ColumnKind::Categorical
                && !c.categories.is_empty()
                && c.categories.len() <= MAX_CATEGORIES
        })
        .map(|c| (c.name.clone(), c.categories.len()))
        .collect();
    let ncats: Vec<usize> = cols.iter().map(|c| c.1).collect();
    let (cells, counts) = rayon::join(
        || finest_cells(ds, max_level, &cols),
        || count_distributions(ds),
    );
    // Levels from the finest up, then stored coarsest first.
    let mut levels = vec![cells];
    for _ in MIN_LEVEL..max_level {
        let next = levels.last().expect("one level").coarser(&ncats);
        levels.push(next);
    }
    levels.reverse();

    let path = dir.join(OVERVIEW_FILE);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut at = 0u64;
    let mut put = |out: &mut std::io::BufWriter<std::fs::File>, bytes: &[u8]| {
        out.write_all(bytes)?;
        let pad = padded(bytes.len()) as usize - bytes.len();
        out.write_all(&[0u8; 8][..pad])?;
        at += (bytes.len() + pad) as u64;
        Ok::<u64, std::io::Error>(at)
    };
    let mut info = OverviewInfo {
        bytes: 0,
        categorical: cols
            .iter()
            .map(|(name, k)| OverviewColumn {
                name: name.clone(),
                categories: *k,
            })
            .collect(),
        levels: Vec::new(),
        counts: Vec::new(),
    };
    let mut offset = 0u64;
    for (i, cells) in levels.iter().enumerate() {
        let level = MIN_LEVEL + i as u32;
        let s = QBITS - level;
        let keys: Vec<u32> = cells
            .x
            .iter()
            .zip(&cells.y)
            .map(|(&x, &y)| (crate::geo::hilbert(x << s, y << s) >> (2 * s)) as u32)
            .collect();
        info.levels.push(OverviewLevel {
            level,
            cells: cells.len() as u64,
            offset,
        });
        for a in [&keys, &cells.x, &cells.y, &cells.count]
            .into_iter()
            .chain(&cells.cats)
        {
            offset = put(&mut out, &le_u32(a))?;
        }
    }
    for (i, dist) in counts.iter().enumerate() {
        info.counts.push(OverviewCounts {
            level: MIN_LEVEL + i as u32,
            values: dist.len() as u64,
            offset,
        });
        let v: Vec<u8> = dist.iter().flat_map(|d| d.0.to_le_bytes()).collect();
        put(&mut out, &v)?;
        let k: Vec<u8> = dist.iter().flat_map(|d| d.1.to_le_bytes()).collect();
        offset = put(&mut out, &k)?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    info.bytes = offset;
    Ok(info)
}

fn le_u32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
