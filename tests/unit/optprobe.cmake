sonde_unit_test(test_optprobe ubsan ${CMAKE_CURRENT_LIST_DIR}/test_optprobe.c)

# one layout in two files, opened in turn at one address (optx_lib.S)
foreach(v a b c)
	add_library(opt_${v} SHARED ${CMAKE_CURRENT_LIST_DIR}/optx_lib.S)
	set_target_properties(opt_${v} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SONDE_TARGET_BIN}
		LINKER_LANGUAGE C)
endforeach()
target_compile_definitions(opt_b PRIVATE OPTX_INTO)
target_compile_definitions(opt_c PRIVATE OPTX_SPLIT)
add_dependencies(test_optprobe opt_a opt_b opt_c)
