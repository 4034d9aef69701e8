# The communicator (dsrt_comm.h): one process, MPI, NCCL. Included from
# runtime/CMakeLists.txt after `dsrt` is defined. MPI and NCCL are opened
# with dlopen at run time; MPICH's mpi.h is only needed to build the MPI
# backend (its handles are integer constants), NCCL's ABI is spelled out.
set(DSRT_COMM_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/Communicator.cpp
  ${CMAKE_CURRENT_LIST_DIR}/Watchdog.cpp
  ${CMAKE_CURRENT_LIST_DIR}/MpiCommunicator.cpp
  ${CMAKE_CURRENT_LIST_DIR}/NcclApi.cpp
  ${CMAKE_CURRENT_LIST_DIR}/NcclCommunicator.cpp
  ${CMAKE_CURRENT_LIST_DIR}/CApi.cpp)
target_sources(dsrt PRIVATE ${DSRT_COMM_SOURCES})

find_path(DSRT_MPI_INCLUDE_DIR mpi.h
  PATHS /usr/include/x86_64-linux-gnu/mpich /usr/include/aarch64-linux-gnu/mpich
        /usr/include/mpich /usr/lib/x86_64-linux-gnu/mpich/include
  NO_DEFAULT_PATH)
if(DSRT_MPI_INCLUDE_DIR)
  message(STATUS "dsrt: MPI backend with ${DSRT_MPI_INCLUDE_DIR}/mpi.h (libmpich loaded at run time)")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/MpiCommunicator.cpp
    PROPERTIES COMPILE_DEFINITIONS DSRT_HAVE_MPI=1
               INCLUDE_DIRECTORIES ${DSRT_MPI_INCLUDE_DIR})
else()
  message(WARNING "dsrt: MPICH's mpi.h not found (Debian: libmpich-dev): the MPI backend reports itself missing")
endif()
