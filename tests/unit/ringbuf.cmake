sonde_unit_test(test_ringbuf asan ${CMAKE_CURRENT_LIST_DIR}/test_ringbuf.c)
# the same file without sanitizers, for throughput numbers only
sonde_unit_test(test_ringbuf_perf none ${CMAKE_CURRENT_LIST_DIR}/test_ringbuf.c)
target_compile_definitions(test_ringbuf_perf PRIVATE RB_PERF_ONLY)
