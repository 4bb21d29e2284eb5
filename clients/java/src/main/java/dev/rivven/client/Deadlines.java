package dev.rivven.client;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Deadlines for many calls with one thread. Calls that share a timeout are added in the order they were made, so
 * their deadlines come in order too: a FIFO per timeout, where the thread only ever waits for the heads. Adding
 * and expiring are O(1); a call answered in time is skipped when its turn comes. (A scheduled task per call would
 * cost a heap insertion and an allocation on every record call.)
 */
final class Deadlines implements Runnable {
  private final Object lock = new Object();
  private final Map<Long, ArrayDeque<Call<?>>> queues = new HashMap<>();
  private final Consumer<Call<?>> expire;
  private final Thread thread;
  private boolean stopped;

  Deadlines(String name, Consumer<Call<?>> expire) {
    this.expire = expire;
    this.thread = new Thread(this, name);
    thread.setDaemon(true);
    thread.start();
  }

  void add(Call<?> call, long timeoutMs) {
    synchronized (lock) {
      ArrayDeque<Call<?>> q = queues.computeIfAbsent(timeoutMs, k -> new ArrayDeque<>());
      // A non-empty queue's head is already waited for, and it expires before this call does.
      if (q.isEmpty()) lock.notifyAll();
      q.addLast(call);
    }
  }

  /** Queues kept now (tests). */
  int queueCount() {
    synchronized (lock) {
      return queues.size();
    }
  }

  void stop() {
    synchronized (lock) {
      stopped = true;
      queues.clear();
      lock.notifyAll();
    }
  }

  @Override
  public void run() {
    List<Call<?>> due = new ArrayList<>();
    while (true) {
      synchronized (lock) {
        if (stopped) return;
        long now = System.nanoTime();
        long next = Long.MAX_VALUE;
        for (java.util.Iterator<ArrayDeque<Call<?>>> it = queues.values().iterator(); it.hasNext(); ) {
          ArrayDeque<Call<?>> q = it.next();
          while (!q.isEmpty()) {
            Call<?> head = q.peekFirst();
            if (head.isDone()) {
              q.pollFirst();
            } else if (head.deadlineNanos - now <= 0) {
              due.add(q.pollFirst());
            } else {
              next = Math.min(next, head.deadlineNanos);
              break;
            }
          }
          // Callers that pass a timeout of their own each time (a deadline budget) must not leave a queue per value.
          if (q.isEmpty()) it.remove();
        }
        if (due.isEmpty()) {
          try {
            if (next == Long.MAX_VALUE) lock.wait();
            else TimeUnit.NANOSECONDS.timedWait(lock, next - now);
          } catch (InterruptedException e) {
            return;
          }
          continue;
        }
      }
      // Outside the lock: completing a future runs its callbacks.
      for (Call<?> c : due) {
        try {
          expire.accept(c);
        } catch (RuntimeException e) {
          // A caller's callback threw; the timer must go on for every other call.
        }
      }
      due.clear();
    }
  }
}
