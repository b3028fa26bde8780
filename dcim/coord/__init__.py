"""Monitors that take over from each other: rooms assigned to live members through etcd.

* `config`: the `coordination:` section;
* `etcd`: a small client of etcd's v3 JSON gateway (leases, ranges, transactions);
* `plan`: which member polls which room (bounded-load rendezvous hashing);
* `handover`: the incidents and silences that travel with a room, kept in etcd;
* `member`: the loop each monitor runs (register, plan, release, take, keep on when
  etcd is gone).
"""
