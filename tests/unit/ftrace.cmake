# The function tracers: tests/unit/ftlib.c built once per way sonde
# hooks a function, all linked into test_ftrace.
set(FTLIB_SRC ${CMAKE_CURRENT_LIST_DIR}/ftlib.c)
foreach(kind plain pfe fentry mcount)
	add_library(ft_${kind} SHARED ${FTLIB_SRC})
	set_target_properties(ft_${kind} PROPERTIES OUTPUT_NAME ft_${kind}
		LIBRARY_OUTPUT_DIRECTORY ${SONDE_TARGET_BIN})
	target_compile_definitions(ft_${kind} PRIVATE FT=${kind}_)
	target_compile_options(ft_${kind} PRIVATE -O2 -fno-omit-frame-pointer)
endforeach()
target_compile_options(ft_pfe PRIVATE -fpatchable-function-entry=5)
target_compile_options(ft_fentry PRIVATE -pg -mfentry)
target_compile_options(ft_mcount PRIVATE -pg)
# (their -pg calls resolve to the __fentry__/mcount this program exports:
# sonde's, found before libc's gprof one)

# two more, that test_ftrace opens and closes (dlopen) while tracing: one
# hooked by probes, one by its patched nops
add_library(ft_dl SHARED ${FTLIB_SRC})
set_target_properties(ft_dl PROPERTIES OUTPUT_NAME ft_dl LIBRARY_OUTPUT_DIRECTORY ${SONDE_TARGET_BIN})
target_compile_definitions(ft_dl PRIVATE FT=dl_)
target_compile_options(ft_dl PRIVATE -O2 -fno-omit-frame-pointer)
add_library(ft_dlpfe SHARED ${FTLIB_SRC})
set_target_properties(ft_dlpfe PROPERTIES OUTPUT_NAME ft_dlpfe
	LIBRARY_OUTPUT_DIRECTORY ${SONDE_TARGET_BIN})
target_compile_definitions(ft_dlpfe PRIVATE FT=dlp_)
target_compile_options(ft_dlpfe PRIVATE -O2 -fno-omit-frame-pointer -fpatchable-function-entry=5)

sonde_unit_test(test_ftrace ubsan ${CMAKE_CURRENT_LIST_DIR}/test_ftrace.c)
target_link_libraries(test_ftrace PRIVATE ft_plain ft_pfe ft_fentry ft_mcount)
add_dependencies(test_ftrace ft_dl ft_dlpfe)

# C++ exceptions through hooked frames: a library's functions hooked by
# probes (plain -O2) or by their patched entry nops (and stubs)
function(ftrace_cxx_test name lib)
	add_library(${lib} SHARED ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/ftlib_cxx.cc)
	set_target_properties(${lib} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SONDE_TARGET_BIN})
	target_compile_options(${lib} PRIVATE -O2 ${ARGN})
	add_executable(${name} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/test_ftrace_cxx.cc)
	set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${SONDE_TEST_BIN})
	target_compile_options(${name} PRIVATE ${SONDE_CXX_WARNINGS} -fno-omit-frame-pointer
		-fsanitize=undefined -fno-sanitize-recover=all)
	target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
	target_link_libraries(${name} PRIVATE sonde_ubsan sonde_check ${lib})
	add_test(NAME ${name} COMMAND ${name})
	set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 LABELS unit TIMEOUT 300)
endfunction()
ftrace_cxx_test(test_ftrace_cxx ft_cxx)
ftrace_cxx_test(test_ftrace_cxx_pfe ft_cxx_pfe -fpatchable-function-entry=5)
