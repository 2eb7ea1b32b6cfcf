include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS llmguard EXPORT llmguardTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/llmguard DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The command line and the mock, for the shell and for testing agents against faults.
if(LLMGUARD_BUILD_TOOLS)
  install(TARGETS llmguard-cli llmguard-mock RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(EXPORT llmguardTargets NAMESPACE llmguard::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/llmguard)

configure_package_config_file(cmake/llmguardConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/llmguardConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/llmguard)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/llmguardConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/llmguardConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/llmguardConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/llmguard)

# A static libllmguard needs its private dependencies on the link line; a shared one does not.
if(BUILD_SHARED_LIBS)
  set(LLMGUARD_PC_REQUIRES_PRIVATE "libcurl simdjson fmt absl_time libcrypto hiredis")
  set(LLMGUARD_PC_REQUIRES "")
else()
  set(LLMGUARD_PC_REQUIRES_PRIVATE "")
  set(LLMGUARD_PC_REQUIRES "libcurl simdjson fmt absl_time libcrypto hiredis")
endif()
configure_file(cmake/llmguard.pc.in ${CMAKE_CURRENT_BINARY_DIR}/llmguard.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/llmguard.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
