sonde_unit_test(test_kretprobe ubsan ${CMAKE_CURRENT_LIST_DIR}/test_kretprobe.c)

# kretprobes and C++ exceptions: the same harness, built as C++
add_executable(test_kretprobe_cxx ${CMAKE_CURRENT_LIST_DIR}/test_kretprobe_cxx.cc)
set_target_properties(test_kretprobe_cxx PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${SONDE_TEST_BIN})
target_compile_options(test_kretprobe_cxx PRIVATE ${SONDE_CXX_WARNINGS} -fno-omit-frame-pointer
	-fsanitize=undefined -fno-sanitize-recover=all)
target_link_libraries(test_kretprobe_cxx PRIVATE sonde_ubsan sonde_check)
add_test(NAME test_kretprobe_cxx COMMAND test_kretprobe_cxx)
set_tests_properties(test_kretprobe_cxx PROPERTIES SKIP_RETURN_CODE 77 LABELS unit TIMEOUT 300)

# without any membarrier (seccomp, nohz_full): sd_sync_cores() falls back to an
# mprotect TLB shootdown; unregistering under threads must still be safe
add_test(NAME test_kretprobe_no_membarrier
	COMMAND test_kretprobe unregister_while_threads_inside)
set_tests_properties(test_kretprobe_no_membarrier PROPERTIES ENVIRONMENT SONDE_MEMBARRIER=0
	SKIP_RETURN_CODE 77 LABELS unit TIMEOUT 300)
