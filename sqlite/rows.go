package sqlite

import "iter"

// rows is one kind of a workspace's rows in the overlay, by key. A
// workspace almost always has one or two of a kind pending, and a Go map's
// first group holds eight keys and values however few are used: for a
// charge, about 2 KiB. So up to rowsInline rows are a slice searched in
// order, and past that a map.
type rows[K comparable, V any] struct {
	list []rowKV[K, V]
	m    map[K]V
}

type rowKV[K comparable, V any] struct {
	k K
	v V
}

// rowsInline is the most rows kept in the slice (then a map): a search of
// eight costs about what a map's lookup does.
const rowsInline = 8

func (r *rows[K, V]) len() int {
	if r.m != nil {
		return len(r.m)
	}
	return len(r.list)
}

func (r *rows[K, V]) get(k K) (V, bool) {
	if r.m != nil {
		v, ok := r.m[k]
		return v, ok
	}
	for i := range r.list {
		if r.list[i].k == k {
			return r.list[i].v, true
		}
	}
	var zero V
	return zero, false
}

func (r *rows[K, V]) set(k K, v V) {
	if r.m != nil {
		r.m[k] = v
		return
	}
	for i := range r.list {
		if r.list[i].k == k {
			r.list[i].v = v
			return
		}
	}
	if len(r.list) < rowsInline {
		r.list = append(r.list, rowKV[K, V]{k, v})
		return
	}
	r.m = make(map[K]V, 2*rowsInline)
	for _, kv := range r.list {
		r.m[kv.k] = kv.v
	}
	r.m[k] = v
	clear(r.list)
	r.list = r.list[:0]
}

func (r *rows[K, V]) del(k K) {
	if r.m != nil {
		delete(r.m, k)
		return
	}
	for i := range r.list {
		if r.list[i].k == k {
			last := len(r.list) - 1
			r.list[i] = r.list[last]
			r.list[last] = rowKV[K, V]{} // let go of what it points to
			r.list = r.list[:last]
			return
		}
	}
}

// reset empties the rows, keeping the slice's room and dropping a map.
func (r *rows[K, V]) reset() {
	clear(r.list)
	r.list = r.list[:0]
	r.m = nil
}

// all yields every row, in no particular order.
func (r *rows[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		if r.m != nil {
			for k, v := range r.m {
				if !yield(k, v) {
					return
				}
			}
			return
		}
		for _, kv := range r.list {
			if !yield(kv.k, kv.v) {
				return
			}
		}
	}
}
