//! HOP without the size/slide blow-up.
//!
//! Planned naively, `HOP(src, ts, slide, size)` copies every row into `size / slide`
//! windows before the aggregate, so a 10-minute window sliding by 1 second costs 600
//! aggregate updates per row. When the aggregate emits on window close over an append-only
//! input and every aggregate can be merged (count, sum, min, max), this pass rewrites the
//! job instead to:
//!
//! 1. assign each row to its slide-sized *pane* (a tumble of `slide`), one copy per row;
//! 2. aggregate per (key, pane), emitting each pane once when the watermark closes it;
//! 3. copy each pane's partial row into the `size / slide` windows containing the pane;
//! 4. merge the partials per (key, window), emitting each window once when it closes.
//!
//! Per input row that is one aggregate update, as for a tumble; the copying in step 3 is
//! per (key, pane), proportional to the output. The pane aggregate is partitioned by the
//! non-window group columns only, so steps 2–4 run chained in one task per key range, and
//! a pane always reaches the merge before the watermark that closes its windows.

use weir_plan::job_graph::{
    AggregateCall, AggregateKind, AggregateSpec, FieldSpec, OperatorSpec, Partitioning, Vertex, WindowKind,
    WindowedGroups,
};

/// Rewrites every eligible HOP aggregate of the job (see the module docs).
pub fn combine_hop_panes(vertices: &mut [Vertex]) {
    for consumer in 0..vertices.len() {
        if let Some(rewrite) = eligible(vertices, consumer) {
            apply(vertices, consumer, rewrite);
        }
    }
}

struct Rewrite {
    producer: usize,
    /// Index of the HOP WindowAssign in the producer's chain.
    assign: usize,
    slide: i64,
    size: i64,
    offset: i64,
    /// Group columns holding window_start and window_end at the aggregate.
    start_col: usize,
    end_col: usize,
}

/// Where a column after the window assignment comes from.
#[derive(Clone, Copy, PartialEq)]
enum Origin {
    WindowStart,
    WindowEnd,
    Other,
    /// An expression that reads a window column: panes would change its value.
    DependsOnWindow,
}

/// Column indexes an expression (SQL over `_cN` names) reads.
fn referenced_columns(sql: &str) -> Vec<usize> {
    let bytes = sql.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 2 < bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && &bytes[i..i + 2] == b"_c" && bytes[i + 2].is_ascii_digit() {
            let digits: String = sql[i + 2..].chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                found.push(n);
            }
            i += 2 + digits.len();
        } else {
            i += 1;
        }
    }
    found
}

fn eligible(vertices: &[Vertex], consumer: usize) -> Option<Rewrite> {
    let vertex = &vertices[consumer];
    let Some(OperatorSpec::HashAggregate(spec)) = vertex.chain.first() else { return None };
    let window = spec.window.as_ref()?;
    if !window.emit_on_close || !window.exclusive_end || !spec.append_only_input || vertex.inputs.len() != 1 {
        return None;
    }
    let mergeable = |k: AggregateKind| {
        matches!(
            k,
            AggregateKind::CountRows
                | AggregateKind::Count
                | AggregateKind::Sum
                | AggregateKind::Min
                | AggregateKind::Max
        )
    };
    if !spec.aggregates.iter().all(|a| mergeable(a.kind)) {
        return None;
    }
    let producer = vertex.inputs[0].from;
    let chain = &vertices[producer].chain;
    let assign = chain
        .iter()
        .position(|op| matches!(op, OperatorSpec::WindowAssign { kind: WindowKind::Hop { .. }, .. }))?;
    let OperatorSpec::WindowAssign { kind: WindowKind::Hop { slide, size, offset }, time_column: _ } =
        chain[assign]
    else {
        return None;
    };
    // Trace the window columns through the rest of the producer's chain.
    let width = vertices_output_width_before(vertices, producer, assign)?;
    let mut origins: Vec<Origin> = vec![Origin::Other; width];
    origins.push(Origin::WindowStart);
    origins.push(Origin::WindowEnd);
    for op in &chain[assign + 1..] {
        match op {
            OperatorSpec::Project { exprs, .. } => {
                origins = exprs
                    .iter()
                    .map(|e| match e.strip_prefix("_c").and_then(|n| n.parse::<usize>().ok()) {
                        Some(c) => origins.get(c).copied().unwrap_or(Origin::Other),
                        None if referenced_columns(e).iter().any(|c| {
                            matches!(
                                origins.get(*c),
                                Some(Origin::WindowStart | Origin::WindowEnd | Origin::DependsOnWindow)
                            )
                        }) =>
                        {
                            Origin::DependsOnWindow
                        }
                        None => Origin::Other,
                    })
                    .collect();
            }
            OperatorSpec::Filter { predicate } => {
                let reads_window = referenced_columns(predicate)
                    .iter()
                    .any(|c| !matches!(origins.get(*c), Some(Origin::Other)));
                if reads_window {
                    return None;
                }
            }
            _ => return None,
        }
    }
    let gc = spec.group_columns;
    let start_col = (0..gc).find(|c| origins.get(*c) == Some(&Origin::WindowStart))?;
    let end_col = window.column;
    if origins.get(end_col) != Some(&Origin::WindowEnd) {
        return None;
    }
    // Every other column the aggregate reads must not depend on the window.
    let reads = (0..gc)
        .filter(|c| *c != start_col && *c != end_col)
        .chain(spec.aggregates.iter().filter_map(|a| a.input_column));
    for c in reads {
        if origins.get(c) != Some(&Origin::Other) {
            return None;
        }
    }
    Some(Rewrite { producer, assign, slide, size, offset, start_col, end_col })
}

/// The number of columns the producer's chain has right before operator `index`.
fn vertices_output_width_before(vertices: &[Vertex], vertex: usize, index: usize) -> Option<usize> {
    let v = &vertices[vertex];
    let mut width = match &v.source {
        Some(weir_plan::job_graph::SourceSpec::Table { schema, .. })
        | Some(weir_plan::job_graph::SourceSpec::View { schema, .. })
        | Some(weir_plan::job_graph::SourceSpec::Connector { schema, .. }) => schema.len(),
        None => return None,
    };
    for op in &v.chain[..index] {
        match op {
            OperatorSpec::Project { exprs, .. } => width = exprs.len(),
            OperatorSpec::Filter { .. } => {}
            OperatorSpec::WindowAssign { .. } => width += 2,
            _ => return None,
        }
    }
    Some(width)
}

fn apply(vertices: &mut [Vertex], consumer: usize, rw: Rewrite) {
    let Some(OperatorSpec::HashAggregate(spec)) = vertices[consumer].chain.first().cloned() else { return };
    let OperatorSpec::WindowAssign { time_column, .. } = vertices[rw.producer].chain[rw.assign] else {
        return;
    };
    // 1. Panes: a tumble of `slide`.
    vertices[rw.producer].chain[rw.assign] = OperatorSpec::WindowAssign {
        kind: WindowKind::Tumble { size: rw.slide, offset: rw.offset },
        time_column,
    };
    let gc = spec.group_columns;
    let keys: Vec<usize> = (0..gc).filter(|c| *c != rw.start_col && *c != rw.end_col).collect();
    vertices[consumer].inputs[0].partitioning = Partitioning::Hash(keys);
    // 2. Partial aggregate per (key, pane).
    let partial_fields: Vec<FieldSpec> = spec.output[gc..]
        .iter()
        .enumerate()
        .map(|(i, f)| FieldSpec { name: format!("_partial{i}"), data_type: f.data_type.clone() })
        .collect();
    let pane = AggregateSpec {
        group_columns: gc,
        aggregates: spec.aggregates.clone(),
        output: spec.output[..gc].iter().cloned().chain(partial_fields.iter().cloned()).collect(),
        global: false,
        window: Some(WindowedGroups {
            column: rw.end_col,
            exclusive_end: true,
            emit_on_close: true,
            close_after: 0,
        }),
        append_only_input: true,
        state_ttl_ms: None,
    };
    // 3. Each pane into the windows that contain it, then back to the group column order.
    let k = spec.aggregates.len();
    let expand = OperatorSpec::WindowAssign {
        kind: WindowKind::Hop { slide: rw.slide, size: rw.size, offset: rw.offset },
        time_column: rw.start_col,
    };
    let exprs: Vec<String> = (0..gc)
        .map(|c| match c {
            c if c == rw.start_col => format!("_c{}", gc + k),
            c if c == rw.end_col => format!("_c{}", gc + k + 1),
            c => format!("_c{c}"),
        })
        .chain((0..k).map(|j| format!("_c{}", gc + j)))
        .collect();
    let reorder = OperatorSpec::Project { exprs, output: pane.output.clone() };
    // 4. Merge the partials per window.
    let merge = AggregateSpec {
        group_columns: gc,
        aggregates: spec
            .aggregates
            .iter()
            .enumerate()
            .map(|(j, a)| AggregateCall {
                kind: match a.kind {
                    AggregateKind::Min => AggregateKind::Min,
                    AggregateKind::Max => AggregateKind::Max,
                    _ => AggregateKind::Sum,
                },
                input_column: Some(gc + j),
            })
            .collect(),
        ..spec
    };
    let chain = &mut vertices[consumer].chain;
    chain[0] = OperatorSpec::HashAggregate(merge);
    chain.splice(0..0, [OperatorSpec::HashAggregate(pane), expand, reorder]);
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_positional_references() {
        assert_eq!(super::referenced_columns("_c1 + abs(_c12) * x_c3"), vec![1, 12]);
    }
}
