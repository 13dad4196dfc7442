package fakecontrol

import (
	"context"
	"sync"
)

// queue is an unbounded FIFO, like the asyncio queues of the Python server:
// a push never blocks the connection's reader.
type queue[T any] struct {
	mu    sync.Mutex // guards items and wake
	items []T
	wake  chan struct{} // closed and replaced on each push
}

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
	q.mu.Unlock()
}

// next removes and returns the first item, waiting for one until ctx ends.
func (q *queue[T]) next(ctx context.Context) (T, error) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			v := q.items[0]
			var zero T
			q.items[0] = zero
			q.items = q.items[1:]
			q.mu.Unlock()
			return v, nil
		}
		if q.wake == nil {
			q.wake = make(chan struct{})
		}
		w := q.wake
		q.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}

// len is the number of queued items.
func (q *queue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
