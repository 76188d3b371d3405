"""asynccfn against the raw aiobotocore/aiohttp floor, on the same local servers, in one run.

Run ``python -m benchmarks`` (``nox -s bench``; ``--help`` for options). Each benchmark times
asynccfn and the hand-written floor (the same DynamoDB requests and response PUTs without
asynccfn) in interleaved rounds and reports the ratio of their medians: the machine is shared
and noisy, so ratios, not absolute times, are the figures of record. The servers are the
suite's: DynamoDB Local (Amazon's, in memory), moto's S3 in a child process, and the local
Lambda service. Results go to ``benchmarks/results/latest.json`` and ``latest.md``.

=====================  ===================================================  ==================
benchmark              compares                                             target
=====================  ===================================================  ==================
1 step_overhead        500 sequential ``ctx.step`` vs 500 conditional       ratio <= 1.15
                       PutItem of the same items
2 replay               an invocation replaying 1,000 (and 10,000) steps     ratio <= 1.25,
                       then answering vs a paginated Query of the items     <= 50 us CPU/step,
                                                                            per step flat
3 cold_start           a fresh process serving one no-op Create vs one      ratio <= 1.2,
                       that does one PutItem and one PUT; import time       own imports <= 30 ms
4 round_trips          DynamoDB requests counted (no-op, N steps, replay)   <= 3, N+3, pages+3
5 concurrency          200 operations at once vs the same calls at once     throughput >= 0.85,
                                                                            peak RSS reported
6 handover             end of the deadline scope to the successor's first   median, p99
                       line of user code, through the local Lambda service  reported
7 journal_size         bytes per step (100-byte result), the operation      reported
=====================  ===================================================  ==================
"""
