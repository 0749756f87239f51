# Static tracepoints: the runtime (ubsan: it patches code) with tracepoints of
# the test's own and libtpdl.so opened at run time; the format files and the
# print fmt interpreter (asan), checked against the kernel's own format files
# when tracefs is readable.
include(${CMAKE_CURRENT_LIST_DIR}/../targets/tpsample.cmake)

sonde_unit_test(test_tracepoint ubsan ${CMAKE_CURRENT_LIST_DIR}/test_tracepoint.c)
target_include_directories(test_tracepoint PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(test_tracepoint PRIVATE pthread dl)
add_dependencies(test_tracepoint tpdl)

sonde_unit_test(test_tracepoint_printfmt asan ${CMAKE_CURRENT_LIST_DIR}/test_tracepoint_printfmt.c)
